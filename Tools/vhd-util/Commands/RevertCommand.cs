using BlkTapCtrl.Tools.VhdUtil.Cli;
using BlkTapCtrl.Vhd.Operations;

namespace BlkTapCtrl.Tools.VhdUtil.Commands;

/// <summary>revert -n name -j journal: undo an interrupted journaled operation and delete the journal.</summary>
public static class RevertCommand
{
    public static int Run(IReadOnlyList<string> args)
    {
        var g = new Getopt(args, "n:j:h");
        string? name = g.Options.LastOrDefault(o => o.Option == 'n').Argument;
        string? journal = g.Options.LastOrDefault(o => o.Option == 'j').Argument;
        if (g.Invalid || g.Positionals.Count > 0 || name == null || journal == null || g.Options.Any(o => o.Option == 'h'))
        {
            Output.Line("options: <-n name> <-j journal> [-h help]");
            return -22;
        }
        return ImageCommand.Attempt(() => VhdJournal.Revert(journal, name), err => $"failed to revert {name}: {err}");
    }
}
