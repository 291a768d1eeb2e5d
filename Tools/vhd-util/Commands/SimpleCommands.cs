using BlkTapCtrl.Tools.VhdUtil.Cli;
using BlkTapCtrl.Vhd;
using BlkTapCtrl.Vhd.Image;
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
            if (field.Length >= 25) { Output.Line("invalid field"); bad = true; }
            else if (field != "hidden") { Output.Line($"invalid field {field}"); bad = true; }
            else if (value > 255) { Output.Line($"invalid value {value}"); bad = true; }
            else
            {
                try
                {
                    VhdEditor.SetHidden(name, (byte)value);
                    return 0;
                }
                catch (Exception e) when (e is VhdFormatException or IOException or UnauthorizedAccessException)
                {
                    int err = Errors.From(e);
                    Output.Line($"error opening {name}: {err}");
                    return err;
                }
            }
        }
        Output.Line("options: <-n name> <-f field> <-v value> [-h help]");
        return -22;
    }
}

/// <summary>repair -n name: rewrite the footer (from the backup if the primary is bad), files and block devices.</summary>
public static class RepairCommand
{
    public static int Run(IReadOnlyList<string> args)
    {
        var g = new Getopt(args, "n:h");
        string? name = g.Options.LastOrDefault(o => o.Option == 'n').Argument;
        if (g.Invalid || g.Positionals.Count > 0 || name == null || g.Options.Any(o => o.Option == 'h'))
        {
            Output.Line("options: <-n name> [-h help]");
            return -22;
        }
        try
        {
            VhdEditor.Repair(name);
            return 0;
        }
        catch (Exception e) when (e is VhdFormatException or IOException or UnauthorizedAccessException)
        {
            int err = Errors.From(e);
            Output.Line($"error opening {name}: {err}");
            return err;
        }
    }
}

/// <summary>coalesce -n name: copy the child's written sectors into its parent.</summary>
public static class CoalesceCommand
{
    public static int Run(IReadOnlyList<string> args)
    {
        var g = new Getopt(args, "n:h");
        string? name = g.Options.LastOrDefault(o => o.Option == 'n').Argument;
        if (g.Invalid || g.Positionals.Count > 0 || name == null || g.Options.Any(o => o.Option == 'h'))
        {
            Output.Line("options: <-n name> [-h help]");
            return -22;
        }
        try
        {
            using (var probe = VhdImage.Open(name, VhdOpenFlags.ReadOnly))
            {
                if (!probe.IsDifferencing)
                {
                    Output.Line("coalescing of non-differencing disks is not supported");
                    return -22;
                }
            }
            VhdEditor.Coalesce(name);
            return 0;
        }
        catch (Exception e) when (e is VhdFormatException or IOException or UnauthorizedAccessException)
        {
            int err = Errors.From(e);
            Output.Line($"error coalescing {name}: {err}");
            return err;
        }
    }
}

/// <summary>fill -n name: read and rewrite every block (allocating the whole disk).</summary>
public static class FillCommand
{
    public static int Run(IReadOnlyList<string> args)
    {
        var g = new Getopt(args, "n:h");
        string? name = g.Options.LastOrDefault(o => o.Option == 'n').Argument;
        if (g.Invalid || g.Positionals.Count > 0 || name == null || g.Options.Any(o => o.Option == 'h'))
        {
            Output.Line("options: <-n name> [-h help]");
            return -22;
        }
        try
        {
            VhdEditor.Fill(name);
            return 0;
        }
        catch (Exception e) when (e is VhdFormatException or IOException or UnauthorizedAccessException)
        {
            int err = Errors.From(e);
            Output.Line($"error opening {name}: {err}");
            return err;
        }
    }
}

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
        try { using var probe = VhdImage.Open(name); }
        catch (Exception e) when (e is VhdFormatException or IOException or UnauthorizedAccessException)
        {
            int err = Errors.From(e);
            Output.Line($"error opening {name}: {err}");
            return err;
        }
        int result = 0;
        if (size != 0)
        {
            try { VhdEditor.SetPhysicalSize(name, (long)size); }
            catch (Exception e) when (e is VhdFormatException or IOException)
            {
                result = Errors.From(e);
                Output.Line($"failed to set physical size to {size}: {result}");
            }
        }
        if (parent != null)
        {
            try { VhdEditor.ChangeParent(name, parent, raw); }
            catch (Exception e) when (e is VhdFormatException or IOException)
            {
                result = Errors.From(e);
                Output.Line($"failed to set parent to '{parent}': {result}");
            }
        }
        return result;
    }
}

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
        try
        {
            if (fast)
                VhdResizer.FastResize(name, size << 20);
            else
                VhdResizer.JournaledResize(name, size << 20, journal!);
            return 0;
        }
        catch (Exception e) when (e is VhdFormatException or IOException or UnauthorizedAccessException)
        {
            int err = Errors.From(e);
            Output.Line($"resize failed: {err}");
            return err;
        }
    }
}

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
        try
        {
            VhdJournal.Revert(journal, name);
            return 0;
        }
        catch (Exception e) when (e is VhdFormatException or IOException or UnauthorizedAccessException)
        {
            int err = Errors.From(e);
            Output.Line($"failed to revert {name}: {err}");
            return err;
        }
    }
}
