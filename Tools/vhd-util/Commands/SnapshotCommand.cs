using BlkTapCtrl.Tools.VhdUtil.Cli;
using BlkTapCtrl.Vhd;
using BlkTapCtrl.Vhd.Format;
using BlkTapCtrl.Vhd.Image;
using BlkTapCtrl.Vhd.Operations;

namespace BlkTapCtrl.Tools.VhdUtil.Commands;

/// <summary>
/// snapshot -n name -p parent [-l limit] [-m] [-S MB]: a differencing child. Without -m, empty
/// differencing parents are skipped down to the real backing file (a raw file is detected as such);
/// -l refuses (ENOSPC) when the new chain would be deeper than the limit. As in the original, -S also
/// sets the depth limit.
/// </summary>
public static class SnapshotCommand
{
    public static int Run(IReadOnlyList<string> args)
    {
        var g = new Getopt(args, "n:p:l:mS:h");
        string? name = null, pname = null;
        long limit = 0;
        ulong mbytes = 0;
        bool raw = false, bad = g.Invalid || g.Positionals.Count > 0;
        foreach (var (c, a) in g.Options)
        {
            switch (c)
            {
                case 'n': name = a; break;
                case 'p': pname = a; break;
                case 'l': limit = (long)Getopt.ParseUnsigned(a); break;
                case 'S': mbytes = Getopt.ParseUnsigned(a); limit = (long)mbytes; break; // the original's fall-through
                case 'm': raw = true; break;
                default: bad = true; break;
            }
        }
        if (bad || name == null || pname == null)
        {
            Output.Line("options: <-n name> <-p parent name> [-l snapshot depth limit] [-m parent_is_raw] [-S size (MB) for metadata preallocation (see vhd-util resize)] [-h help]");
            return -22;
        }
        if (!File.Exists(pname))
        {
            Output.Line($"error resolving {pname}");
            return -2;
        }
        var ppath = ParentPath.Canonical(pname);
        string backing = ppath;
        bool backingRaw = raw;
        ulong size = 0;
        if (!raw)
        {
            int err = FindSnapshotTarget(ppath, out backing, out backingRaw);
            if (err != 0)
            {
                Output.Line($"error finding snapshot target: {err}");
                return err;
            }
        }
        if (limit > 0 && !backingRaw)
        {
            int depth;
            try
            {
                using var chain = VhdChain.Open(backing, VhdOpenFlags.ReadOnly | VhdOpenFlags.IgnoreDisabled);
                depth = chain.Depth;
            }
            catch (VhdFormatException e) { return Errors.From(e); }
            if (depth + 1 > limit)
            {
                Output.Line($"snapshot depth exceeded: current depth: {depth}, limit: {limit}");
                return -28;
            }
        }
        if (backing != ppath)
        {
            using var given = VhdImage.Open(ppath, VhdOpenFlags.ReadOnly | VhdOpenFlags.IgnoreDisabled);
            size = given.Footer.CurrentSize;
        }
        try
        {
            VhdCreator.Create(name, new VhdCreateOptions
            {
                Type = DiskType.Differencing,
                ParentPath = backing,
                ParentIsRaw = backingRaw,
                SizeBytes = size,
                MetadataSizeBytes = mbytes << 20,
            });
            return 0;
        }
        catch (Exception e) when (e is VhdFormatException or IOException or UnauthorizedAccessException)
        {
            return Errors.From(e);
        }
    }

    /// <summary>Skips differencing parents that hold no data; a non-VHD file is a raw backing file.</summary>
    private static int FindSnapshotTarget(string path, out string target, out bool targetRaw)
    {
        target = path;
        targetRaw = false;
        for (int depth = 0; depth < VhdLimits.MaxChainDepth; depth++)
        {
            VhdImage image;
            try
            {
                image = VhdImage.Open(target, VhdOpenFlags.ReadOnly | VhdOpenFlags.IgnoreDisabled);
            }
            catch (VhdFormatException e) when (e.Field is "footer cookie" or "file size")
            {
                targetRaw = true;
                return 0;
            }
            catch (VhdFormatException e) { return Errors.From(e); }
            using (image)
            {
                if (!image.IsDifferencing || image.Bat.Any(e => e != BlockAllocationTable.Unused))
                    return 0;
                var parent = image.ResolveParentPath();
                if (parent == null)
                    return -2;
                if (image.HasRawParent)
                {
                    target = parent;
                    targetRaw = true;
                    return 0;
                }
                target = parent;
            }
        }
        return -40;
    }
}
