using BlkTapCtrl.Tools.VhdUtil.Cli;
using BlkTapCtrl.Vhd.Image;
using BlkTapCtrl.Vhd.Operations;

namespace BlkTapCtrl.Tools.VhdUtil.Commands;

/// <summary>coalesce -n name: copy the child's written sectors into its parent.</summary>
public static class CoalesceCommand
{
    public static int Run(IReadOnlyList<string> args)
    {
        if (ImageCommand.ParseNameOnly(args) is not { } name) return -22;
        bool differencing = true;
        int result = ImageCommand.Attempt(() =>
        {
            using (var probe = VhdImage.Open(name, VhdOpenFlags.ReadOnly))
                differencing = probe.IsDifferencing;
            if (differencing) VhdEditor.Coalesce(name);
        }, err => $"error coalescing {name}: {err}");
        if (result == 0 && !differencing)
        {
            Output.Line("coalescing of non-differencing disks is not supported");
            return -22;
        }
        return result;
    }
}
