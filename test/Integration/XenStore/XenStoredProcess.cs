using System.Net.Sockets;
using BlkTapCtrl.Testing;

namespace BlkTapCtrl.Integration.Tests.XenStore;

/// <summary>
/// Our built <c>xenstored</c> running as a real process on a socket in the test's temp dir. <see cref="Env"/>
/// points libxenstore's peers (xenstore-utils, test-xenstore) at it through <c>XENSTORED_PATH</c>.
/// </summary>
internal sealed class XenStoredProcess : IDisposable
{
    private XenStoredProcess(ChildProcess process, string socketPath, string pidFile)
    {
        Process = process;
        SocketPath = socketPath;
        PidFile = pidFile;
    }

    public ChildProcess Process { get; }

    public string SocketPath { get; }

    public string PidFile { get; }

    public Dictionary<string, string?> Env => new() { ["XENSTORED_PATH"] = SocketPath };

    public static async Task<XenStoredProcess> StartAsync(TempDir dir, params string[] extraArgs)
    {
        string socket = dir["xs.sock"], pid = dir["xenstored.pid"];
        var process = new ChildProcess(RepoPaths.Executable("xenstored"), ["--socket", socket, "--pid-file", pid, .. extraArgs]);
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (true)
        {
            if (process.HasExited)
                Assert.Fail($"xenstored exited with {process.ExitCode}: {process.StdErr}");
            if (File.Exists(pid) && CanConnect(socket)) break;
            if (DateTime.UtcNow > deadline)
            {
                process.Dispose();
                Assert.Fail($"xenstored did not start listening on {socket}; stderr: {process.StdErr}");
            }
            await Task.Delay(20);
        }
        return new XenStoredProcess(process, socket, pid);
    }

    private static bool CanConnect(string path)
    {
        using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            s.Connect(new UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>Runs a peer tool against this daemon and returns its exit code and output.</summary>
    public Task<(int Code, string Out, string Err)> RunAsync(string tool, params string[] args) =>
        ChildProcess.RunAsync(tool, args, Env, TimeSpan.FromSeconds(60));

    public async Task<int> TerminateAsync()
    {
        var (code, _, err) = await ChildProcess.RunAsync("kill", ["-TERM", Process.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        Assert.That(code, Is.Zero, err);
        return await Process.WaitAsync(TimeSpan.FromSeconds(10));
    }

    public void Dispose() => Process.Dispose();
}
