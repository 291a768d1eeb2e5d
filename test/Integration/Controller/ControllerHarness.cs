using System.Diagnostics;
using System.Globalization;
using BlkTapCtrl.Testing;
using BlkTapCtrl.XenStore.Client;

namespace BlkTapCtrl.Integration.Tests.Controller;

/// <summary>
/// A real controller stack for one test: our xenstored on a private socket, blktapctrl with its own run,
/// log and pid paths, the real tapdisk (or a scripted stand-in where a §5 row asks for one). The toolstack's
/// writes go through Debian's xenstore-write / xenstore-rm with XENSTORED_PATH at our socket; the test's own
/// reads and waits use our client. Everything started is stopped on dispose.
/// </summary>
public sealed class ControllerHarness : IAsyncDisposable
{
    public const int Dom0 = 0;
    private ChildProcess? _xenstored;

    private ControllerHarness(TempDir dir) => Dir = dir;

    public TempDir Dir { get; }
    public string? TapdiskOverride { get; private set; }
    public string Socket => Dir["xs.sock"];
    public string RunDir => Dir["run"];
    public string LogDir => Dir["log"];
    public string PidFile => Dir["run/blktapctrl.pid"];
    public ChildProcess Controller { get; private set; } = null!;
    public XenStoreClient Xs { get; private set; } = null!;

    public Dictionary<string, string?> Environment => new() { ["XENSTORED_PATH"] = Socket };

    public static Task<ControllerHarness> StartAsync(string? tapdiskOverride = null, params string[] extraArgs) =>
        StartAsync(_ => tapdiskOverride, extraArgs);

    /// <summary>Starts the stack; <paramref name="tapdiskOverride"/> may create a stand-in inside the test's directory.</summary>
    public static async Task<ControllerHarness> StartAsync(Func<ControllerHarness, string?> tapdiskOverride, params string[] extraArgs)
    {
        var h = new ControllerHarness(new TempDir("ctl"));
        try
        {
            h.TapdiskOverride = tapdiskOverride(h);
            await h.StartXenStoredAsync();
            await h.ToolstackWriteAsync("/local/domain/0/name", "Domain-0", "/local/domain/0/domid", "0");
            h.Controller = h.StartController(h.TapdiskOverride, extraArgs);
            await h.WaitForLogAsync("watching /local/domain/0/backend/tap", TimeSpan.FromSeconds(20));
            return h;
        }
        catch
        {
            await h.DisposeAsync();
            throw;
        }
    }

    private async Task StartXenStoredAsync()
    {
        _xenstored = new ChildProcess(RepoPaths.Executable("xenstored"), ["--socket", Socket]);
        var sw = Stopwatch.StartNew();
        while (true)
        {
            if (File.Exists(Socket))
            {
                try
                {
                    Xs = await XenStoreClient.ConnectAsync(Socket);
                    return;
                }
                catch (Exception) when (sw.Elapsed < TimeSpan.FromSeconds(20)) { }
            }
            if (_xenstored.HasExited)
                Assert.Fail($"xenstored exited {_xenstored.ExitCode}: {_xenstored.StdErr}");
            if (sw.Elapsed > TimeSpan.FromSeconds(20))
                Assert.Fail("xenstored did not come up: " + _xenstored.StdErr);
            await Task.Delay(20);
        }
    }

    public ChildProcess StartController(string? tapdiskOverride, params string[] extraArgs)
    {
        var env = new Dictionary<string, string?> { ["TAPDISK"] = tapdiskOverride, ["BLKTAPCTRL_DEBUG"] = "1" };
        string[] args = ["--xenstore", Socket, "--tapdisk", RepoPaths.Executable("tapdisk"), "--run-dir", RunDir,
            "--log-dir", LogDir, "--pid-file", PidFile, .. extraArgs];
        return new ChildProcess(RepoPaths.Executable("blktapctrl"), args, env);
    }

    /// <summary>The controller's output so far (Serilog console sink writes to stderr).</summary>
    public string Log => Controller.StdErr + Controller.StdOut;

    /// <summary>The controller logged worker <paramref name="pid"/>'s clean exit (one line per exit, from the reaper).</summary>
    public static bool LoggedCleanExit(string log, int pid) =>
        log.Contains($"reaped tapdisk pid {pid} (exited with status 0)", StringComparison.Ordinal);

    public async Task WaitForCleanExitAsync(int pid, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (!LoggedCleanExit(Log, pid))
        {
            if (sw.Elapsed > timeout)
                Assert.Fail($"blktapctrl did not log the clean exit of tapdisk pid {pid} within {timeout}:\n{Log}");
            await Task.Delay(20);
        }
    }

    public async Task WaitForLogAsync(string text, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (!Log.Contains(text, StringComparison.Ordinal))
        {
            if (Controller.HasExited)
                Assert.Fail($"blktapctrl exited {Controller.ExitCode} before logging '{text}':\n{Log}");
            if (sw.Elapsed > timeout)
                Assert.Fail($"blktapctrl did not log '{text}' within {timeout}:\n{Log}");
            await Task.Delay(20);
        }
    }

    // ---- the toolstack, through Debian's xenstore-utils ----

    public async Task ToolstackWriteAsync(params string[] pathValuePairs)
    {
        var (code, _, err) = await ChildProcess.RunAsync("xenstore-write", pathValuePairs, Environment, TimeSpan.FromSeconds(20));
        Assert.That(code, Is.Zero, $"xenstore-write {string.Join(' ', pathValuePairs)}: {err}");
    }

    public async Task ToolstackRemoveAsync(string path)
    {
        var (code, _, err) = await ChildProcess.RunAsync("xenstore-rm", [path], Environment, TimeSpan.FromSeconds(20));
        Assert.That(code, Is.Zero, $"xenstore-rm {path}: {err}");
    }

    public static string Backend(int domId, int devId) =>
        string.Create(CultureInfo.InvariantCulture, $"/local/domain/{Dom0}/backend/tap/{domId}/{devId}");

    /// <summary>
    /// The toolstack creates a VBD: frontend, params, mode, tapdisk-request (and more keys) in one
    /// transaction, the directory node itself last so the backend watch probes a complete directory.
    /// </summary>
    public async Task<string> CreateVbdAsync(int domId, int devId, string @params, string request = "start",
        bool paused = false, string mode = "w", params string[] extra)
    {
        string p = Backend(domId, devId);
        var pairs = new List<string>
        {
            p + "/frontend", $"/local/domain/{domId}/device/vbd/{devId}",
            p + "/params", @params,
            p + "/mode", mode,
        };
        if (request.Length > 0) pairs.AddRange([p + "/tapdisk-request", request]);
        if (paused) pairs.AddRange([p + "/pause", ""]);
        pairs.AddRange(extra);
        pairs.AddRange([p, ""]);
        await ToolstackWriteAsync([.. pairs]);
        return p;
    }

    // ---- the test's own view, through our client ----

    public Task<string?> ReadAsync(string path) => Xs.TryReadAsync(path);

    public async Task<string> WaitForKeyAsync(string path, TimeSpan? timeout = null)
    {
        string? value = null;
        await WaitUntilAsync(async () => (value = await Xs.TryReadAsync(path)) != null, $"{path} to appear", timeout);
        return value!;
    }

    public Task WaitForAbsenceAsync(string path, TimeSpan? timeout = null) =>
        WaitUntilAsync(async () => !await Xs.ExistsAsync(path), $"{path} to disappear", timeout);

    public async Task WaitUntilAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null)
    {
        var limit = timeout ?? TimeSpan.FromSeconds(60); // generous: CI shares 2 cores with other test hosts
        var sw = Stopwatch.StartNew();
        while (!await condition())
        {
            if (sw.Elapsed > limit)
                Assert.Fail($"timed out after {limit} waiting for {what}; controller log:\n{Log}");
            if (Controller.HasExited)
                Assert.Fail($"blktapctrl exited {Controller.ExitCode} while waiting for {what}:\n{Log}");
            await Task.Delay(10);
        }
    }

    public static bool ProcessExists(int pid) => Directory.Exists($"/proc/{pid}") && !IsZombie(pid);

    private static bool IsZombie(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/stat").Split(") ")[1].StartsWith('Z'); }
        catch (IOException) { return false; }
    }

    public static int ParentOf(int pid) =>
        int.Parse(File.ReadAllText($"/proc/{pid}/stat").Split(") ")[1].Split(' ')[1], CultureInfo.InvariantCulture);

    public static int ParsePid(string value) => int.Parse(value.TrimEnd('\0'), CultureInfo.InvariantCulture);

    /// <summary>The controller's control socket (the harness never moves it with --control-socket).</summary>
    public string ControlSocket => Protocol.ControlSocket.ControlSocketProtocol.DefaultSocketPath(RunDir);

    /// <summary>
    /// Files in the run directory that neither the daemon itself (its pid file and control socket, at the paths
    /// this harness gave it) nor a live channel's worker export (the NBD socket and ring the controller reports
    /// for each channel it lists) accounts for: while VBDs run, their control FIFOs; after teardown, nothing.
    /// An export still on disk once the controller no longer lists its channel is a leftover too.
    /// </summary>
    public async Task<string[]> RunDirLeftoversAsync()
    {
        if (!Directory.Exists(RunDir))
            return [];
        var accounted = new HashSet<string>(StringComparer.Ordinal) { PidFile, ControlSocket };
        foreach (var channel in await ListChannelsAsync())
        {
            if (channel.NbdSocket.Length > 0) accounted.Add(channel.NbdSocket);
            if (channel.Ring.Length > 0) accounted.Add(channel.Ring);
        }
        return Directory.GetFiles(RunDir).Where(f => !accounted.Contains(f)).Select(f => Path.GetFileName(f)!).ToArray();
    }

    /// <summary>
    /// The controller's channels as it reports them on its control socket (<c>list</c>, docs/control-socket.md);
    /// none when the controller is not running (it then owns nothing).
    /// </summary>
    public async Task<IReadOnlyList<Protocol.ControlSocket.ChannelInfo>> ListChannelsAsync()
    {
        if (Controller.HasExited || !File.Exists(ControlSocket))
            return [];
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix,
            System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        try
        {
            await socket.ConnectAsync(new System.Net.Sockets.UnixDomainSocketEndPoint(ControlSocket), limit.Token);
        }
        catch (System.Net.Sockets.SocketException) when (Controller.HasExited)
        {
            return [];
        }
        await using var stream = new System.Net.Sockets.NetworkStream(socket, ownsSocket: false);
        await stream.WriteAsync(Protocol.ControlSocket.ControlSocketJson.EncodeRequest(new("list")), limit.Token);
        var line = new List<byte>();
        var buffer = new byte[64 * 1024];
        while (!line.Contains((byte)'\n'))
        {
            int n = await stream.ReadAsync(buffer, limit.Token);
            if (n == 0) Assert.Fail("blktapctrl closed its control socket without answering 'list'");
            line.AddRange(buffer.AsSpan(0, n));
        }
        using var doc = Protocol.ControlSocket.ControlSocketJson.DecodeResponse(line.GetRange(0, line.IndexOf((byte)'\n')).ToArray());
        return Protocol.ControlSocket.ControlSocketJson.ReadList(doc.RootElement);
    }

    public string MakeImage(string name, int sectors, byte fill = 0)
    {
        var data = new byte[sectors * 512];
        Array.Fill(data, fill);
        File.WriteAllBytes(Dir[name], data);
        return Dir[name];
    }

    /// <summary>A scripted stand-in for tapdisk (only where a §5 row asks for one).</summary>
    public string Script(string name, string body)
    {
        File.WriteAllText(Dir[name], "#!/bin/sh\n" + body + "\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(Dir[name], (UnixFileMode)0x1ed);
        return Dir[name];
    }

    /// <summary>SIGTERM, then the exit status (the daemon closes every VBD first).</summary>
    public async Task<int> StopControllerAsync(TimeSpan? timeout = null)
    {
        if (!Controller.HasExited)
            Native.Kill(Controller.Pid, 15);
        return await Controller.WaitAsync(timeout ?? TimeSpan.FromSeconds(30));
    }

    /// <summary>Stops the harness's controller for good (a test then runs its own).</summary>
    public async Task RetireControllerAsync()
    {
        await StopControllerAsync();
        Controller.Dispose();
        _controllerRetired = true;
    }

    private bool _controllerRetired;

    public async ValueTask DisposeAsync()
    {
        if (!_controllerRetired && Controller is { HasExited: false })
        {
            try { await StopControllerAsync(TimeSpan.FromSeconds(30)); } catch (TimeoutException) { }
        }
        if (!_controllerRetired) Controller?.Dispose();
        if (Xs != null) await Xs.DisposeAsync();
        _xenstored?.Dispose();
        Dir.Dispose();
    }
}

internal static partial class Native
{
    [System.Runtime.InteropServices.LibraryImport("libc", SetLastError = true)]
    public static partial int kill(int pid, int signal);

    public static void Kill(int pid, int signal) => kill(pid, signal);
}
