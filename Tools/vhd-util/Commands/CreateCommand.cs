using BlkTapCtrl.Tools.VhdUtil.Cli;
using BlkTapCtrl.Vhd.Format;
using BlkTapCtrl.Vhd.Operations;

namespace BlkTapCtrl.Tools.VhdUtil.Commands;

/// <summary>create -n name -s MB [-r] [-S MB]: a dynamic disk (fixed with -r), -S preallocates metadata.</summary>
public static class CreateCommand
{
    public static int Run(IReadOnlyList<string> args)
    {
        var g = new Getopt(args, "n:s:S:rh");
        string? name = null;
        ulong size = 0, mbytes = 0;
        bool sparse = true, bad = g.Invalid || g.Positionals.Count > 0;
        foreach (var (c, a) in g.Options)
        {
            switch (c)
            {
                case 'n': name = a; break;
                case 's': bad |= !Getopt.TryParseUnsigned(a, out size); break;
                case 'S': bad |= !Getopt.TryParseUnsigned(a, out mbytes); break;
                case 'r': sparse = false; break;
                default: bad = true; break;
            }
        }
        if (bad || name == null || size == 0 || (mbytes != 0 && mbytes < size))
        {
            Output.Line("options: <-n name> <-s size (MB)> [-r reserve] [-h help] [<-S size (MB) for metadata preallocation (see vhd-util resize)>]");
            return -22;
        }
        if (size > (ulong)VhdLimits.MaxDiskBytes >> 20 || mbytes > (ulong)VhdLimits.MaxDiskBytes >> 20)
        {
            Console.Error.WriteLine($"vhd-util: size {Math.Max(size, mbytes)} MB exceeds the {VhdLimits.MaxDiskBytes >> 20} MB limit");
            return -27;
        }
        try
        {
            VhdCreator.Create(name, new VhdCreateOptions
            {
                SizeBytes = size << 20,
                Type = sparse ? DiskType.Dynamic : DiskType.Fixed,
                MetadataSizeBytes = mbytes << 20,
            });
            return 0;
        }
        catch (Exception e) when (e is BlkTapCtrl.Vhd.VhdFormatException or IOException or UnauthorizedAccessException)
        {
            return Errors.From(e);
        }
    }
}
