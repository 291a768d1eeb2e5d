using BlkTapCtrl.Tools.VhdUtil.Cli;
using BlkTapCtrl.Vhd;
using BlkTapCtrl.Vhd.Format;
using BlkTapCtrl.Vhd.Image;
using BlkTapCtrl.Vhd.Operations;

namespace BlkTapCtrl.Tools.VhdUtil.Commands;

/// <summary>
/// check -n name [-i] [-p]: prints every problem found (the original stopped at the first), then
/// dumps the metadata; "&lt;name&gt; is valid" when there is none. -i accepts tapdisk's all-0xC7
/// "opened" marker as primary footer; -p also checks every parent.
/// </summary>
public static class CheckCommand
{
    public static int Run(IReadOnlyList<string> args)
    {
        var g = new Getopt(args, "n:iph");
        string? name = null;
        bool ignore = false, parents = false, help = false;
        bool bad = g.Invalid || g.Positionals.Count > 0;
        foreach (var (c, a) in g.Options)
        {
            switch (c)
            {
                case 'n': name = a; break;
                case 'i': ignore = true; break;
                case 'p': parents = true; break;
                case 'h': help = true; break;
                default: bad = true; break;
            }
        }
        if (bad || help || name == null)
        {
            Output.Line("options: -n <file> [-i ignore missing primary footers] [-p check parents] [-h help]");
            return help && !bad ? 0 : -22;
        }
        int err = CheckOne(name, ignore);
        if (err == 0 && parents)
            err = CheckParents(name, ignore);
        return err;
    }

    private static int CheckOne(string name, bool ignore)
    {
        var report = VhdChecker.Check(name, ignore);
        foreach (var p in report.Problems)
            Output.Line(p);
        if (report.IsValid)
        {
            if (report.Type is Vhd.Format.DiskType.Dynamic or Vhd.Format.DiskType.Differencing)
                Output.Line($"{name} is valid");
            return 0;
        }
        Output.Line($"{name} appears invalid; dumping metadata");
        ReadCommand.Run(["-p", "-n", name]);
        return report.Error;
    }

    private static int CheckParents(string name, bool ignore)
    {
        int err = 0;
        var cur = name;
        var seen = new HashSet<string>();
        while (true)
        {
            string? parent;
            try
            {
                using var image = VhdImage.Open(cur, VhdOpenFlags.ReadOnly | VhdOpenFlags.IgnoreDisabled | VhdOpenFlags.Lenient);
                if (!image.IsDifferencing || image.HasRawParent)
                    break;
                parent = image.ResolveParentPath();
            }
            catch (VhdFormatException e) { err = -e.Errno; break; }
            if (parent == null)
            {
                Output.Line("error getting parent: -2");
                err = -2;
                break;
            }
            if (!seen.Add(parent) || seen.Count > VhdLimits.MaxChainDepth)
            {
                Output.Line($"error getting parent: {-Errnos.ELOOP}");
                err = -Errnos.ELOOP;
                break;
            }
            cur = parent;
            err = CheckOne(cur, ignore);
            if (err != 0)
                break;
        }
        if (err != 0)
            Output.Line($"error checking parents: {err}");
        return err;
    }
}
