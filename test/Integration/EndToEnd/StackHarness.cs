using BlkTapCtrl.Testing;
using BlkTapCtrl.XenStore.Client;

namespace BlkTapCtrl.Integration.Tests.EndToEnd;

/// <summary>
/// The whole stack of one test in its own temp directory: our xenstored on a private socket, blktapctrl with
/// the built tapdisk (run dir, log dir, control socket all private), a XenStore connection acting as the
/// toolstack, and tap-ctl pointed at both. Every process is stopped on dispose.
/// </summary>
public sealed class StackHarness : IAsyncDisposable
{
    private readonly TempDir _dir = new("e2e");
    private ChildProcess? _xenstored;

    public StackHarness()
    {
        Directory.CreateDirectory(RunDir);
        Directory.CreateDirectory(LogDir);
    }

    public string Dir => _dir.Path;
    public string XenStoreSocket => _dir["xs.sock"];
    public string RunDir => _dir["run"];
    public string LogDir => _dir["log"];
    public string ControlSocket => Path.Combine(RunDir, "blktapctrl.sock");
    public ChildProcess? Controller { get; private set; }
    public XenStoreClient Xs { get; private set; } = null!;
    public string Backend(int domId, int devId) => $"/local/domain/0/backend/tap/{domId}/{devId}";

    public static async Task<StackHarness> StartAsync()
    {
        var h = new StackHarness();
        try
        {
            h._xenstored = new ChildProcess(RepoPaths.Executable("xenstored"), ["--socket", h.XenStoreSocket]);
            await WaitForAsync(() => Task.FromResult(File.Exists(h.XenStoreSocket)), TimeSpan.FromSeconds(30), "xenstored's socket");
            h.Xs = await XenStoreClient.ConnectAsync(h.XenStoreSocket);
            await h.StartControllerAsync();
            return h;
        }
        catch
        {
            await h.DisposeAsync();
            throw;
        }
    }

    public IDictionary<string, string?> Environment => new Dictionary<string, string?>
    {
        ["XENSTORED_PATH"] = XenStoreSocket,
        ["BLKTAPCTRL_SOCKET"] = ControlSocket,
        ["TAPDISK_LOG_DIR"] = LogDir,
    };

    /// <summary>Starts blktapctrl (again: a controller that died or stopped is replaced) and waits for its control socket.</summary>
    public async Task StartControllerAsync()
    {
        Controller?.Dispose();
        Controller = new ChildProcess(RepoPaths.Executable("blktapctrl"),
            ["--xenstore", XenStoreSocket, "--tapdisk", RepoPaths.Executable("tapdisk"), "--run-dir", RunDir, "--log-dir", LogDir,
             "--wait-timeout", "20", "--stop-timeout", "10"], Environment);
        await WaitForAsync(async () => (await TapCtlAsync("list")).Code == 0, TimeSpan.FromSeconds(30),
            "blktapctrl's control socket", () => Controller.StdErr + Controller.StdOut);
    }

    /// <summary>SIGTERM and wait: the controller closes every VBD first.</summary>
    public async Task StopControllerAsync()
    {
        if (Controller is not { HasExited: false } c) return;
        Signals.Send(c.Pid, Signals.SIGTERM);
        await c.WaitAsync(TimeSpan.FromSeconds(30));
    }

    public Task<(int Code, string Out, string Err)> TapCtlAsync(params string[] args) =>
        ChildProcess.RunAsync(RepoPaths.Executable("tap-ctl"), args, Environment, TimeSpan.FromSeconds(60));

    public async Task<string> TapCtlOkAsync(params string[] args)
    {
        var (code, output, error) = await TapCtlAsync(args);
        Assert.That(code, Is.Zero, $"tap-ctl {string.Join(' ', args)}: {error}{output}\ncontroller: {Controller?.StdErr}{Controller?.StdOut}");
        return output;
    }

    /// <summary>Registers a VBD exactly as the toolstack does: one transaction, tapdisk-request = start included.</summary>
    public async Task RegisterAsync(int domId, int devId, string @params, string mode = "w")
    {
        string p = Backend(domId, devId);
        await Xs.RunInTransactionAsync(async tx =>
        {
            await tx.WriteAsync(p + "/frontend", $"/local/domain/{domId}/device/vbd/{devId}");
            await tx.WriteAsync(p + "/params", @params);
            await tx.WriteAsync(p + "/mode", mode);
            await tx.WriteAsync(p + "/tapdisk-request", "start");
            await tx.WriteAsync(p, ""); // the directory node last: the backend watch probes a complete VBD
        });
    }

    public async Task<int> WaitForPidAsync(int domId, int devId)
    {
        string key = Backend(domId, devId) + "/tapdisk-pid";
        string? pid = null;
        await WaitForAsync(async () => (pid = await Xs.TryReadAsync(key)) != null, TimeSpan.FromSeconds(30), key,
            () => Controller?.StdErr + Controller?.StdOut);
        return int.Parse(pid!.TrimEnd('\0'), System.Globalization.CultureInfo.InvariantCulture);
    }

    public static async Task WaitForAsync(Func<Task<bool>> condition, TimeSpan timeout, string what, Func<string>? diagnostics = null)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
                Assert.Fail($"timed out after {timeout.TotalSeconds} s waiting for {what}\n{diagnostics?.Invoke()}");
            await Task.Delay(25);
        }
    }

    public async ValueTask DisposeAsync()
    {
        try { await StopControllerAsync(); } catch (TimeoutException) { }
        Controller?.Dispose();
        if (Xs != null) await Xs.DisposeAsync();
        _xenstored?.Dispose();
        _dir.Dispose();
    }
}

/// <summary>kill(2) for tests that signal the processes they started.</summary>
public static class Signals
{
    public const int SIGKILL = 9;
    public const int SIGTERM = 15;

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int sig);

    public static void Send(int pid, int signal) =>
        Assert.That(Kill(pid, signal), Is.Zero, $"kill({pid}, {signal})");
}
