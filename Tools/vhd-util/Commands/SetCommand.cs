using BlkTapCtrl.Tools.VhdUtil.Cli;
using BlkTapCtrl.Vhd.Operations;

namespace BlkTapCtrl.Tools.VhdUtil.Commands;

/// <summary>set -n name -f hidden -v 0..255.</summary>
public static class SetCommand
{
    public static int Run(IReadOnlyList<string> args)
    {
        var g = new Getopt(args, "n:f:v:h");
        string? name = null, field = null;
        ulong? value = null;
        bool bad = g.Invalid || g.Positionals.Count > 0;
        foreach (var (c, a) in g.Options)
        {
            switch (c)
            {
                case 'n': name = a; break;
                case 'f': field = a; break;
                case 'v': value = Getopt.ParseUnsigned(a); break;
                default: bad = true; break;
            }
        }
        if (!bad && name != null && field != null && value != null)
        {
            if (field.Length >= 25) Output.Line("invalid field");
            else if (field != "hidden") Output.Line($"invalid field {field}");
            else if (value > 255) Output.Line($"invalid value {value}");
            else return ImageCommand.Attempt(() => VhdEditor.SetHidden(name, (byte)value), err => $"error opening {name}: {err}");
        }
        Output.Line("options: <-n name> <-f field> <-v value> [-h help]");
        return -22;
    }
}
