using BlkTapCtrl.Tools.VhdUtil.Cli;
using BlkTapCtrl.Vhd.Operations;

namespace BlkTapCtrl.Tools.VhdUtil.Commands;

/// <summary>fill -n name: read and rewrite every block (allocating the whole disk).</summary>
public static class FillCommand
{
    public static int Run(IReadOnlyList<string> args) =>
        ImageCommand.ParseNameOnly(args) is { } name
            ? ImageCommand.Attempt(() => VhdEditor.Fill(name), err => $"error opening {name}: {err}")
            : -22;
}
