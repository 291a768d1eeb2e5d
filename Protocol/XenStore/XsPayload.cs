using System.Globalization;
using System.Text;

namespace BlkTapCtrl.Protocol.XenStore;

/// <summary>
/// Parsing of request and reply payloads: NUL-separated strings (<c>&lt;foo&gt;|*</c> in xenstore.txt),
/// watch events, permission lists, transaction ids and DIRECTORY_PART replies. Every parser rejects a
/// malformed payload with an <see cref="XsProtocolException"/> that says what was wrong.
/// </summary>
public static class XsPayload
{
    /// <summary>The OK| reply most requests return.</summary>
    public static ReadOnlySpan<byte> Ok => "OK\0"u8;

    /// <summary>
    /// Splits a payload of NUL-terminated strings. A final piece without NUL is returned too when
    /// <paramref name="allowUnterminatedLast"/> (values and libxenstore's write requests end that way).
    /// </summary>
    public static List<string> Strings(ReadOnlySpan<byte> payload, bool allowUnterminatedLast = false)
    {
        var list = new List<string>();
        while (!payload.IsEmpty)
        {
            int nul = payload.IndexOf((byte)0);
            if (nul < 0)
            {
                if (!allowUnterminatedLast)
                    throw new XsProtocolException($"xenstore payload piece '{Encoding.UTF8.GetString(payload)}' lacks its terminating NUL");
                list.Add(Encoding.UTF8.GetString(payload));
                break;
            }
            list.Add(Encoding.UTF8.GetString(payload[..nul]));
            payload = payload[(nul + 1)..];
        }
        return list;
    }

    /// <summary>
    /// The first NUL-terminated string of a payload and the bytes after its NUL (e.g. WRITE's path and value).
    /// Returns false when there is no NUL at all.
    /// </summary>
    public static bool TrySplitFirst(ReadOnlySpan<byte> payload, out ReadOnlySpan<byte> first, out ReadOnlySpan<byte> rest)
    {
        int nul = payload.IndexOf((byte)0);
        if (nul < 0)
        {
            first = rest = default;
            return false;
        }
        first = payload[..nul];
        rest = payload[(nul + 1)..];
        return true;
    }

    /// <summary>A single-string request argument: the string, with the NUL optional at the very end.</summary>
    public static ReadOnlySpan<byte> SingleArgument(ReadOnlySpan<byte> payload)
    {
        if (!payload.IsEmpty && payload[^1] == 0) payload = payload[..^1];
        return payload;
    }

    /// <summary>WATCH_EVENT payload <c>&lt;epath&gt;|&lt;token&gt;|</c>.</summary>
    public static (string Path, string Token) WatchEvent(ReadOnlySpan<byte> payload)
    {
        var parts = Strings(payload, allowUnterminatedLast: true);
        if (parts.Count < 2)
            throw new XsProtocolException($"WATCH_EVENT payload has {parts.Count} strings; expected path and token");
        return (parts[0], parts[1]);
    }

    /// <summary>GET_PERMS reply or the permission part of SET_PERMS: one or more <c>&lt;perm&gt;|</c>.</summary>
    public static List<XsPermission> Permissions(ReadOnlySpan<byte> payload)
    {
        var strings = Strings(payload, allowUnterminatedLast: true);
        if (strings.Count == 0)
            throw new XsProtocolException("permission list is empty; the owner entry is required");
        var perms = new List<XsPermission>(strings.Count);
        foreach (var s in strings) perms.Add(XsPermission.Parse(s));
        return perms;
    }

    /// <summary>TRANSACTION_START reply: the id as unsigned decimal.</summary>
    public static uint TransactionId(ReadOnlySpan<byte> payload)
    {
        var text = Encoding.ASCII.GetString(SingleArgument(payload));
        if (!uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out uint id))
            throw new XsProtocolException($"TRANSACTION_START reply '{text}' is not an unsigned decimal transaction id");
        return id;
    }

    /// <summary>DIRECTORY_PART reply: generation count, then child names; an empty name ends the list.</summary>
    public static (string Generation, List<string> Children, bool Complete) DirectoryPart(ReadOnlySpan<byte> payload)
    {
        if (!TrySplitFirst(payload, out var gen, out var rest))
            throw new XsProtocolException("DIRECTORY_PART reply lacks the generation count");
        var children = new List<string>();
        bool complete = false;
        while (!rest.IsEmpty)
        {
            int nul = rest.IndexOf((byte)0);
            if (nul < 0) throw new XsProtocolException("DIRECTORY_PART reply has a child name without NUL");
            if (nul == 0) { complete = true; break; }
            children.Add(Encoding.UTF8.GetString(rest[..nul]));
            rest = rest[(nul + 1)..];
        }
        return (Encoding.ASCII.GetString(gen), children, complete);
    }
}
