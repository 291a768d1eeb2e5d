namespace BlkTapCtrl.Protocol.XenStore;

/// <summary>
/// Path rules of docs/misc/xenstore.txt: ASCII letters, digits and <c>-/_@</c>; no empty path, no doubled
/// or trailing slash (except the root <c>/</c>); at most 3072 bytes absolute, 2048 relative. A path not
/// starting with <c>/</c> is relative to the caller's domain home (<c>/local/domain/&lt;domid&gt;</c>).
/// Watch paths may instead be a special name starting with <c>@</c>.
/// </summary>
public static class XsPath
{
    public const string IntroduceDomain = "@introduceDomain";
    public const string ReleaseDomain = "@releaseDomain";

    /// <summary>Why <paramref name="path"/> is not a valid node path, or null when it is.</summary>
    public static string? Problem(ReadOnlySpan<byte> path)
    {
        if (path.IsEmpty) return "path is empty";
        bool absolute = path[0] == (byte)'/';
        int max = absolute ? XsLimits.AbsolutePathMax : XsLimits.RelativePathMax;
        if (path.Length > max)
            return $"path is {path.Length} bytes, the limit for {(absolute ? "absolute" : "relative")} paths is {max}";
        if (path.Length == 1 && absolute) return null;
        if (path[^1] == (byte)'/') return "path ends with '/'";
        byte previous = 0;
        for (int i = 0; i < path.Length; i++)
        {
            byte c = path[i];
            if (!IsPathChar(c))
                return $"path has character 0x{c:x2} at offset {i}; allowed are letters, digits and -/_@";
            if (c == (byte)'/' && previous == (byte)'/')
                return $"path has a doubled '/' at offset {i}";
            previous = c;
        }
        return null;
    }

    public static string? Problem(string path) => Problem(System.Text.Encoding.UTF8.GetBytes(path));

    public static bool IsValid(ReadOnlySpan<byte> path) => Problem(path) == null;

    public static bool IsValid(string path) => Problem(path) == null;

    /// <summary>Throws <see cref="XsProtocolException"/> naming the problem when the path is invalid.</summary>
    public static void Validate(string path)
    {
        var problem = Problem(path);
        if (problem != null)
            throw new XsProtocolException($"invalid xenstore path '{path}': {problem}");
    }

    /// <summary>A special watch path (<c>@introduceDomain</c>, <c>@releaseDomain</c>, or any other <c>@name</c>).</summary>
    public static bool IsSpecial(ReadOnlySpan<byte> path) => path.Length > 1 && path[0] == (byte)'@';

    public static bool IsSpecial(string path) => path.Length > 1 && path[0] == '@';

    /// <summary>True when <paramref name="child"/> equals <paramref name="parent"/> or lies below it.</summary>
    public static bool IsAtOrBelow(string child, string parent)
    {
        if (parent == "/") return child.Length > 0 && child[0] == '/';
        return child.Length >= parent.Length && child.StartsWith(parent, StringComparison.Ordinal)
            && (child.Length == parent.Length || child[parent.Length] == '/');
    }

    /// <summary>The parent of an absolute path; the root's parent is the root.</summary>
    public static string Parent(string path)
    {
        int slash = path.LastIndexOf('/');
        return slash <= 0 ? "/" : path[..slash];
    }

    /// <summary>The base path of a domain, against which its relative paths resolve.</summary>
    public static string DomainHome(uint domId) => "/local/domain/" + domId.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static bool IsPathChar(byte c) =>
        c is >= (byte)'a' and <= (byte)'z' or >= (byte)'A' and <= (byte)'Z' or >= (byte)'0' and <= (byte)'9'
            or (byte)'-' or (byte)'/' or (byte)'_' or (byte)'@';
}
