using BlkTapCtrl.Tools.VhdUtil.Cli;
using BlkTapCtrl.Vhd.Image;
using BlkTapCtrl.Vhd.Operations;

namespace BlkTapCtrl.Tools.VhdUtil.Commands;

/// <summary>modify -n name [-s bytes] [-p parent [-m]]: move the primary footer; reparent.</summary>
public static class ModifyCommand
{
    public static int Run(IReadOnlyList<string> args)
    {
        var g = new Getopt(args, "n:s:p:mh");
        string? name = null, parent = null;
        ulong size = 0;
        bool raw = false, bad = g.Invalid || g.Positionals.Count > 0;
        foreach (var (c, a) in g.Options)
        {
            switch (c)
            {
                case 'n': name = a; break;
                case 's': size = Getopt.ParseUnsigned(a); break;
                case 'p': parent = a; break;
                case 'm': raw = true; break;
                default: bad = true; break;
            }
        }
        if (bad || name == null)
        {
            Output.Line("*** Dangerous operations, use with care ***");
            Output.Line("options: <-n name> [-p NEW_PARENT set parent [-m raw]] [-s NEW_SIZE set size] [-h help]");
            return -22;
        }
        int opened = ImageCommand.Attempt(() => { using var probe = VhdImage.Open(name); }, err => $"error opening {name}: {err}");
        if (opened != 0) return opened;
        // Both changes are attempted; the result is the last failure, as the original.
        int result = 0;
        if (size != 0)
            result = Keep(result, ImageCommand.Attempt(() => VhdEditor.SetPhysicalSize(name, (long)size), err => $"failed to set physical size to {size}: {err}"));
        if (parent != null)
            result = Keep(result, ImageCommand.Attempt(() => VhdEditor.ChangeParent(name, parent, raw), err => $"failed to set parent to '{parent}': {err}"));
        return result;
    }

    private static int Keep(int previous, int latest) => latest != 0 ? latest : previous;
}
