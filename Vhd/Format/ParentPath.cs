using BlkTapCtrl.Vhd.Platform;

namespace BlkTapCtrl.Vhd.Format;

/// <summary>
/// Parent paths as blktap records them in locators: relative to the child's canonical directory
/// ("./p.vhd", "../x/p.vhd"), and resolved back against the child's directory when opening.
/// </summary>
public static class ParentPath
{
    /// <summary>realpath, or the absolute normalised path when the file does not exist (yet).</summary>
    public static string Canonical(string path)
    {
        var real = NativeFile.Canonical(path);
        if (real != null)
            return real;
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full);
        var realDir = dir == null ? null : NativeFile.Canonical(dir);
        return realDir == null ? full : Path.Combine(realDir, Path.GetFileName(full));
    }

    /// <summary>The path of <paramref name="parent"/> relative to the directory of <paramref name="child"/>.</summary>
    public static string Relative(string child, string parent)
    {
        var from = Path.GetDirectoryName(Canonical(child)) ?? "/";
        var to = Canonical(parent);
        var fromParts = from.Split('/', StringSplitOptions.RemoveEmptyEntries);
        var toParts = to.Split('/', StringSplitOptions.RemoveEmptyEntries);
        int common = 0;
        while (common < fromParts.Length && common < toParts.Length - 1 && fromParts[common] == toParts[common])
            common++;
        int up = fromParts.Length - common;
        var prefix = up == 0 ? "./" : string.Concat(Enumerable.Repeat("../", up));
        return prefix + string.Join('/', toParts[common..]);
    }

    /// <summary>
    /// Resolves a decoded locator path: absolute and readable, else relative to the child's canonical
    /// directory. Returns the canonical path, or null when nothing exists there.
    /// </summary>
    public static string? Resolve(string childPath, string locatorPath)
    {
        if (locatorPath.Length == 0)
            return null;
        if (locatorPath.StartsWith('/'))
            return File.Exists(locatorPath) ? Canonical(locatorPath) : null;
        var dir = Path.GetDirectoryName(Canonical(childPath)) ?? "/";
        var candidate = Path.Combine(dir, locatorPath);
        return File.Exists(candidate) ? Canonical(candidate) : null;
    }
}
