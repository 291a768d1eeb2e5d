using System.Text.RegularExpressions;
using BlkTapCtrl.Testing;

namespace BlkTapCtrl.Integration.Tests.Nbd;

/// <summary>A running <c>tapdisk serve</c> process; stopped with SIGTERM (or killed) on dispose.</summary>
public sealed class TapdiskServe : IDisposable
{
    public ChildProcess Process { get; }
    public string Endpoint { get; }

    private TapdiskServe(ChildProcess process, string endpoint)
    {
        Process = process;
        Endpoint = endpoint;
    }

    /// <summary>Starts <c>tapdisk serve</c> and waits for its "listening on" line.</summary>
    public static async Task<TapdiskServe> StartAsync(params string[] args)
    {
        var p = new ChildProcess(RepoPaths.Executable("tapdisk"), ["serve", .. args]);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (DateTime.UtcNow < deadline)
        {
            var m = Regex.Match(p.StdOut, @"listening on (\S+)");
            if (m.Success) return new TapdiskServe(p, m.Groups[1].Value);
            if (p.HasExited)
                break;
            await Task.Delay(20);
        }
        string err = p.StdErr;
        p.Dispose();
        throw new InvalidOperationException($"tapdisk serve {string.Join(' ', args)} did not start; stderr: {err}");
    }

    /// <summary>The libnbd/qemu URI of the export.</summary>
    public string Uri => Endpoint.StartsWith("unix:", StringComparison.Ordinal)
        ? $"nbd+unix:///?socket={Endpoint[5..]}"
        : $"nbd://{Endpoint[4..]}/";

    /// <summary>Sends SIGTERM and returns the exit code.</summary>
    public async Task<int> StopAsync()
    {
        Posix.Kill(Process.Pid, 15);
        return await Process.WaitAsync(TimeSpan.FromSeconds(20));
    }

    public void Dispose() => Process.Dispose();
}

internal static partial class Posix
{
    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "kill")]
    public static partial int Kill(int pid, int signal);
}
