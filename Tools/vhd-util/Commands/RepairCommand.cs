using BlkTapCtrl.Tools.VhdUtil.Cli;
using BlkTapCtrl.Vhd.Operations;

namespace BlkTapCtrl.Tools.VhdUtil.Commands;

/// <summary>repair -n name: rewrite the footer (from the backup if the primary is bad), files and block devices.</summary>
public static class RepairCommand
{
    public static int Run(IReadOnlyList<string> args) =>
        ImageCommand.ParseNameOnly(args) is { } name
            ? ImageCommand.Attempt(() => VhdEditor.Repair(name), err => $"error opening {name}: {err}")
            : -22;
}
