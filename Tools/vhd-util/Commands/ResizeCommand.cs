using BlkTapCtrl.Tools.VhdUtil.Cli;
using BlkTapCtrl.Vhd.Operations;

namespace BlkTapCtrl.Tools.VhdUtil.Commands;

/// <summary>resize -n name -s MB (-j journal | -f): fast grow within the preallocated BAT, or journaled.</summary>
public static class ResizeCommand
{
    public static int Run(IReadOnlyList<string> args)
    {
        var g = new Getopt(args, "n:s:j:fh");
        string? name = null, journal = null;
        ulong size = 0;
        bool fast = false, bad = g.Invalid || g.Positionals.Count > 0;
        foreach (var (c, a) in g.Options)
        {
            switch (c)
            {
                case 'n': name = a; break;
                case 's': bad |= !Getopt.TryParseUnsigned(a, out size); break;
                case 'j': journal = a; break;
                case 'f': fast = true; break;
                default: bad = true; break;
            }
        }
        if (bad || name == null || size == 0 || (journal == null) == !fast)
        {
            Output.Line("options: <-n name> <-s size (in MB)> (<-j journal> | <-f fast>) [-h help]\n\n"
                + "The resize operation can only be performed offline and must be journaled because resizing the metadata might require moving data blocks. "
                + "However, if a VHD was created with -S <msize> option (during create/snapshot), which preallocates the metadata for growing the VHD up to size <msize>, "
                + "then resizing such a VHD up to <msize> can be performed online without journaling (-f option).");
            return -22;
        }
        return ImageCommand.Attempt(() =>
        {
            if (fast)
                VhdResizer.FastResize(name, size << 20);
            else
                VhdResizer.JournaledResize(name, size << 20, journal!);
        }, err => $"resize failed: {err}");
    }
}
