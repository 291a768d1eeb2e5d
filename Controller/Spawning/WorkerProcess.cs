using System.Globalization;

namespace BlkTapCtrl.Controller.Spawning;

/// <summary>What /proc says about a process that may be one of our workers.</summary>
public static class WorkerProcess
{
    /// <summary>
    /// The minor of the worker <paramref name="pid"/> when it is alive and was started by a controller of this run
    /// directory — its last two arguments are exactly our <c>tapctrlwrite&lt;m&gt;</c> / <c>tapctrlread&lt;m&gt;</c>, so a
    /// recycled pid of some other program is never mistaken for it — else null.
    /// </summary>
    public static int? FindMinor(int pid, string runDir)
    {
        string[] argv;
        try
        {
            argv = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/cmdline").TrimEnd('\0').Split('\0');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        if (argv.Length < 3) return null;
        string write = argv[^2];
        const string prefix = "tapctrlwrite";
        string name = Path.GetFileName(write);
        if (!name.StartsWith(prefix, StringComparison.Ordinal)
            || !int.TryParse(name.AsSpan(prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out int minor))
            return null;
        var expected = ControlFifos.Paths(runDir, minor);
        bool ours = Path.GetFullPath(write) == Path.GetFullPath(expected.Write)
                    && Path.GetFullPath(argv[^1]) == Path.GetFullPath(expected.Read);
        return ours && File.Exists(expected.Write) && File.Exists(expected.Read) ? minor : null;
    }
}
