using BlkTapCtrl.Vhd;

namespace BlkTapCtrl.Tools.VhdUtil.Cli;

/// <summary>What the one-image commands share: their "-n name" option line and the errno mapping of a failed step.</summary>
public static class ImageCommand
{
    /// <summary>The name of a command whose only option is <c>-n name</c> (plus <c>-h</c>); null prints the usage line.</summary>
    public static string? ParseNameOnly(IReadOnlyList<string> args)
    {
        var g = new Getopt(args, "n:h");
        string? name = g.Options.LastOrDefault(o => o.Option == 'n').Argument;
        if (g.Invalid || g.Positionals.Count > 0 || name == null || g.Options.Any(o => o.Option == 'h'))
        {
            Output.Line("options: <-n name> [-h help]");
            return null;
        }
        return name;
    }

    /// <summary>Errors an image operation reports by errno rather than by crashing.</summary>
    public static bool IsImageError(Exception e) => e is VhdFormatException or IOException or UnauthorizedAccessException;

    /// <summary>
    /// Runs one step: 0 when it succeeds, else the negative errno, after printing the original's line for the
    /// failure (<paramref name="failure"/> gets the errno, e.g. <c>error opening NAME: -2</c>).
    /// </summary>
    public static int Attempt(Action step, Func<int, string> failure)
    {
        try
        {
            step();
            return 0;
        }
        catch (Exception e) when (IsImageError(e))
        {
            int err = Errors.From(e);
            Output.Line(failure(err));
            return err;
        }
    }
}
