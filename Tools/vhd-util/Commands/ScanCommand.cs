using BlkTapCtrl.Tools.VhdUtil.Cli;
using BlkTapCtrl.Vhd;
using BlkTapCtrl.Vhd.Format;
using BlkTapCtrl.Vhd.Image;

namespace BlkTapCtrl.Tools.VhdUtil.Commands;

/// <summary>
/// scan [-m glob] [-f] [-c] [-l VG] [-p] [-a] [-v] FILES: one line per image,
/// "vhd=NAME capacity=BYTES size=BYTES hidden=H parent=PARENT|none" or
/// "vhd=NAME scan-error=ERR error-message='MSG'". -f takes the parent from the header name instead of
/// the MACX locator, -c continues after failures, -l scans the volumes of an LVM volume group
/// (/dev/VG/*), -p prints the chains as a tree, -a adds the parents of the images found, -v prints
/// full (canonical) parent paths.
/// </summary>
public static class ScanCommand
{
    private sealed record Scanned(string Name, string Key, string? Error, string? Message, ulong Capacity, long Size, byte Hidden, string? Parent, string? ParentKey);

    public static int Run(IReadOnlyList<string> args)
    {
        var g = new Getopt(args, "m:fcl:pavh");
        string? glob = null, vg = null;
        bool fast = false, cont = false, pretty = false, parents = false, verbose = false, bad = g.Invalid;
        foreach (var (c, a) in g.Options)
        {
            switch (c)
            {
                case 'm': glob = a; break;
                case 'f': fast = true; break;
                case 'c': cont = true; break;
                case 'l': vg = a; break;
                case 'p': pretty = true; break;
                case 'a': parents = true; break;
                case 'v': verbose = true; break;
                default: bad = true; break;
            }
        }
        var targets = new List<string>(g.Positionals);
        if (vg != null)
        {
            var dir = Path.Combine("/dev", vg);
            if (Directory.Exists(dir))
                targets.AddRange(Directory.GetFiles(dir).Where(f => glob == null || GlobMatch(Path.GetFileName(glob), Path.GetFileName(f))));
        }
        else if (glob != null)
        {
            var dir = Path.GetDirectoryName(glob);
            var pattern = Path.GetFileName(glob);
            var search = string.IsNullOrEmpty(dir) ? "." : dir;
            if (Directory.Exists(search))
                targets.AddRange(Directory.GetFiles(search).Select(f => string.IsNullOrEmpty(dir) ? Path.GetFileName(f) : f)
                    .Where(f => GlobMatch(pattern, Path.GetFileName(f))));
        }
        if (bad || targets.Count == 0)
        {
            Output.Line("usage: [OPTIONS] FILES\noptions: [-m match filter] [-f fast] [-c continue on failure] [-l LVM volume] [-p pretty print] [-a scan parents] [-v verbose] [-h help]");
            return bad ? -22 : 0;
        }
        targets.Sort(StringComparer.Ordinal);

        var results = new List<Scanned>();
        var keys = new HashSet<string>();
        int err = 0;
        var queue = new Queue<string>(targets.Distinct());
        while (queue.Count > 0)
        {
            var t = queue.Dequeue();
            var s = ScanOne(t, fast, verbose);
            if (!keys.Add(s.Key))
                continue;
            results.Add(s);
            if (s.Error != null)
            {
                err = int.Parse(s.Error);
                if (!cont)
                    break;
            }
            else if (parents && s.ParentKey != null && !keys.Contains(s.ParentKey))
                queue.Enqueue(s.ParentKey);
        }

        if (pretty)
            PrintTree(results);
        else
            foreach (var s in results)
                Print(s, 0);
        return err;
    }

    private static Scanned ScanOne(string path, bool fast, bool verbose)
    {
        string key = ParentPath.Canonical(path);
        VhdImage image;
        try { image = VhdImage.Open(path, VhdOpenFlags.ReadOnly | VhdOpenFlags.IgnoreDisabled | VhdOpenFlags.Lenient); }
        catch (Exception e) when (e is VhdFormatException or IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"vhd-util: {e.Message}");
            return new Scanned(path, key, (-Errors.Errno(e)).ToString(), "opening file", 0, 0, 0, null, null);
        }
        using (image)
        {
            string? parent = null, parentKey = null;
            if (image.IsDifferencing)
            {
                parentKey = image.ResolveParentPath();
                if (verbose && parentKey != null)
                    parent = parentKey;
                else if (fast)
                    parent = image.Header!.ParentName;
                else
                {
                    var macx = image.ReadLocatorPaths().FirstOrDefault(l => l.Code == PlatformCode.Macx);
                    if (macx.Path == null)
                        return new Scanned(path, key, (-Errnos.EINVAL).ToString(), "failed getting parent", 0, 0, 0, null, null);
                    parent = macx.Path;
                }
            }
            return new Scanned(path, key, null, null, image.Footer.CurrentSize, image.FileLength, image.Footer.Hidden, parent, parentKey);
        }
    }

    private static void Print(Scanned s, int tab)
    {
        var pad = new string(' ', tab);
        if (s.Error != null)
            Output.Line($"{pad}vhd={s.Name} scan-error={s.Error} error-message='{s.Message}'");
        else
            Output.Line($"{pad}vhd={s.Name} capacity={s.Capacity} size={s.Size} hidden={s.Hidden} parent={s.Parent ?? "none"}");
    }

    private static void PrintTree(List<Scanned> results)
    {
        var byKey = results.ToDictionary(r => r.Key);
        var children = results.Where(r => r.ParentKey != null && byKey.ContainsKey(r.ParentKey))
            .GroupBy(r => r.ParentKey!).ToDictionary(g => g.Key, g => g.ToList());
        void Walk(Scanned s, int tab, int depth)
        {
            Print(s, tab);
            if (depth < VhdLimits.MaxChainDepth && children.TryGetValue(s.Key, out var kids))
                foreach (var k in kids) Walk(k, tab + 3, depth + 1);
        }
        foreach (var root in results.Where(r => r.ParentKey == null || !byKey.ContainsKey(r.ParentKey)))
            Walk(root, 0, 0);
    }

    /// <summary>fnmatch for '*', '?' and [...] classes.</summary>
    internal static bool GlobMatch(string pattern, string name)
    {
        var rx = "^" + System.Text.RegularExpressions.Regex.Escape(pattern).Replace("\\*", ".*").Replace("\\?", ".").Replace("\\[", "[").Replace("\\]", "]") + "$";
        return System.Text.RegularExpressions.Regex.IsMatch(name, rx);
    }
}
