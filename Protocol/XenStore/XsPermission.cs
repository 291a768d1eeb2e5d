using System.Globalization;

namespace BlkTapCtrl.Protocol.XenStore;

/// <summary>Access letter of a permission string: <c>n</c>one, <c>r</c>ead, <c>w</c>rite, <c>b</c>oth.</summary>
[Flags]
public enum XsAccess
{
    None = 0,
    Read = 1,
    Write = 2,
    Both = Read | Write,
}

/// <summary>
/// One entry of a node's permission list as carried by GET_PERMS/SET_PERMS, e.g. <c>b0</c> or <c>r5</c>.
/// In a list the first entry names the owner (who always has full access) and the access everyone else
/// gets by default; later entries grant a specific domain its own access.
/// </summary>
public readonly record struct XsPermission(XsAccess Access, uint DomId)
{
    public static XsPermission Parse(ReadOnlySpan<char> text)
    {
        if (!TryParse(text, out var perm))
            throw new XsProtocolException($"invalid xenstore permission '{text}': expected one of n,r,w,b followed by a domid");
        return perm;
    }

    public static bool TryParse(ReadOnlySpan<char> text, out XsPermission permission)
    {
        permission = default;
        if (text.Length < 2) return false;
        XsAccess access;
        switch (text[0])
        {
            case 'n': access = XsAccess.None; break;
            case 'r': access = XsAccess.Read; break;
            case 'w': access = XsAccess.Write; break;
            case 'b': access = XsAccess.Both; break;
            default: return false;
        }
        foreach (var c in text[1..])
            if (c is < '0' or > '9') return false;
        if (!uint.TryParse(text[1..], NumberStyles.None, CultureInfo.InvariantCulture, out uint dom) || dom > 0xffff)
            return false;
        permission = new XsPermission(access, dom);
        return true;
    }

    public char Letter => Access switch
    {
        XsAccess.None => 'n',
        XsAccess.Read => 'r',
        XsAccess.Write => 'w',
        _ => 'b',
    };

    public override string ToString() => Letter + DomId.ToString(CultureInfo.InvariantCulture);
}
