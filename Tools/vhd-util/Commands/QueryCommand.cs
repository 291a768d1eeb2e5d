using BlkTapCtrl.Tools.VhdUtil.Cli;
using BlkTapCtrl.Vhd;
using BlkTapCtrl.Vhd.Image;

namespace BlkTapCtrl.Tools.VhdUtil.Commands;

/// <summary>query -n name [-v -s -p -f -d -S]: virtual MB, physical bytes, parent, hidden, depth, fast-resize MB.</summary>
public static class QueryCommand
{
    public static int Run(IReadOnlyList<string> args)
    {
        var g = new Getopt(args, "n:vspfdSh");
        string? name = null;
        bool size = false, phys = false, parent = false, fields = false, depth = false, fast = false;
        bool bad = g.Invalid || g.Positionals.Count > 0;
        foreach (var (c, a) in g.Options)
        {
            switch (c)
            {
                case 'n': name = a; break;
                case 'v': size = true; break;
                case 's': phys = true; break;
                case 'p': parent = true; break;
                case 'f': fields = true; break;
                case 'd': depth = true; break;
                case 'S': fast = true; break;
                default: bad = true; break;
            }
        }
        if (bad || name == null)
        {
            Output.Line("options: <-n name> [-v print virtual size (in MB)] [-s print physical utilization (bytes)] [-p print parent] [-f print fields] [-d print chain depth] [-S print max fast resize size] [-h help]");
            return -22;
        }
        VhdImage image;
        try { image = VhdImage.Open(name, VhdOpenFlags.ReadOnly | VhdOpenFlags.IgnoreDisabled | VhdOpenFlags.Lenient); }
        catch (Exception e) when (e is VhdFormatException or IOException)
        {
            int err = Errors.From(e);
            Output.Line($"error opening {name}: {err}");
            return err;
        }
        int result = 0;
        using (image)
        {
            if (size)
                Output.Line((image.Footer.CurrentSize >> 20).ToString());
            if (phys)
                Output.Line(image.PhysicalSize.ToString());
            if (parent)
            {
                if (!image.IsDifferencing)
                    Output.Line($"{name} has no parent");
                else
                {
                    var p = image.ResolveParentPath();
                    if (p == null)
                    {
                        Output.Line("query failed");
                        result = result != 0 ? result : -2;
                    }
                    else
                        Output.Line(p);
                }
            }
            if (fields)
                Output.Line($"hidden: {image.Footer.Hidden}");
            if (depth)
            {
                try
                {
                    using var chain = VhdChain.Open(name, VhdOpenFlags.ReadOnly | VhdOpenFlags.IgnoreDisabled);
                    Output.Line($"chain depth: {chain.Depth}");
                }
                catch (VhdFormatException e)
                {
                    Output.Line($"error checking chain depth: {-e.Errno}");
                    result = result != 0 ? result : -e.Errno;
                }
            }
            if (fast)
                Output.Line(image.Header == null ? "0" : ((ulong)image.Header.MaxBatSize * (image.Header.BlockSize >> 20)).ToString());
        }
        return result;
    }
}
