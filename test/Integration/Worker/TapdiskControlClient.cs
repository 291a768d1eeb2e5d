using BlkTapCtrl.Protocol.Control;
using BlkTapCtrl.Testing;

namespace BlkTapCtrl.Integration.Tests.Worker;

/// <summary>
/// Plays the supervisor for one real tapdisk process: makes the two FIFOs, starts the built
/// executable on them and exchanges real 280-byte control records.
/// </summary>
public sealed class TapdiskControlClient : IDisposable
{
    private readonly FileStream _toTapdisk;
    private readonly FileStream _fromTapdisk;

    private readonly string _logDir;

    private TapdiskControlClient(ChildProcess process, FileStream toTapdisk, FileStream fromTapdisk, string logDir)
    {
        Process = process;
        _logDir = logDir;
        _toTapdisk = toTapdisk;
        _fromTapdisk = fromTapdisk;
    }

    public ChildProcess Process { get; }

    /// <summary>The worker's log file in <paramref name="logDir"/> (<c>TAPDISK.&lt;pid&gt;.log</c> once kept, else <c>.tmp</c>), or null.</summary>
    public string? LogFile(string logDir)
    {
        foreach (var suffix in new[] { ".log", ".tmp" })
        {
            string path = Path.Combine(logDir, $"TAPDISK.{Process.Pid}{suffix}");
            if (File.Exists(path)) return path;
        }
        return null;
    }

    public static async Task<TapdiskControlClient> StartAsync(TempDir dir, IDictionary<string, string?>? env = null,
        string? executable = null, params string[] prefixArgs)
    {
        string toTap = dir["ctl-w"], fromTap = dir["ctl-r"];
        foreach (var fifo in new[] { toTap, fromTap })
        {
            var (code, _, err) = await ChildProcess.RunAsync("mkfifo", [fifo]);
            Assert.That(code, Is.Zero, err);
        }
        // Never /var/log/blktap from a test: the log file lands in the test's own directory unless the test chose one.
        var environment = new Dictionary<string, string?>(env ?? new Dictionary<string, string?>());
        environment.TryAdd("TAPDISK_LOG_DIR", dir.Path);
        var process = new ChildProcess(executable ?? RepoPaths.Executable("tapdisk"), [.. prefixArgs, toTap, fromTap], environment);
        // Read-write opens of a FIFO never wait for the other end: a tapdisk that fails to start (or never opens
        // its FIFOs) must fail the test, not hang it in open(2). ReceiveAsync watches the process instead of EOF.
        var w = new FileStream(toTap, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, 1);
        var r = new FileStream(fromTap, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, 1);
        return new TapdiskControlClient(process, w, r, environment["TAPDISK_LOG_DIR"]!);
    }

    public void Send(ControlMessage message)
    {
        var buf = new byte[ControlMessage.Size];
        message.WriteTo(buf);
        _toTapdisk.Write(buf);
        _toTapdisk.Flush();
    }

    public void SendRaw(byte[] record)
    {
        _toTapdisk.Write(record);
        _toTapdisk.Flush();
    }

    public async Task<ControlMessage> ReceiveAsync(TimeSpan? timeout = null)
    {
        var buf = new byte[ControlMessage.Size];
        var read = Task.Run(() => _fromTapdisk.ReadExactly(buf));
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(15));
        while (await Task.WhenAny(read, Task.Delay(50)) != read)
        {
            if (Process.HasExited)
                Assert.Fail($"tapdisk exited with {Process.ExitCode} without replying; stderr: {Process.StdErr}");
            if (DateTime.UtcNow > deadline)
                Assert.Fail($"no reply from tapdisk; stderr: {Process.StdErr}\n{WhereItIs()}");
        }
        await read;
        return ControlMessage.Read(buf);
    }

    /// <summary>For a worker that stopped answering: each thread's state and kernel wait channel, and its log so far.</summary>
    private string WhereItIs()
    {
        var text = new System.Text.StringBuilder();
        try
        {
            foreach (var task in Directory.GetDirectories($"/proc/{Process.Pid}/task"))
            {
                string comm = File.ReadAllText(Path.Combine(task, "comm")).Trim();
                string wchan = File.ReadAllText(Path.Combine(task, "wchan")).Trim();
                string state = File.ReadAllLines(Path.Combine(task, "status")).FirstOrDefault(l => l.StartsWith("State:", StringComparison.Ordinal)) ?? "";
                text.AppendLine($"thread {Path.GetFileName(task)} {comm}: {state} wchan {wchan}");
            }
        }
        catch (IOException e) { text.AppendLine($"/proc: {e.Message}"); }
        if (LogFile(_logDir) is { } log)
            text.AppendLine($"{log}:\n{File.ReadAllText(log)}");
        return text.ToString();
    }

    public async Task<ControlMessage> RequestAsync(ControlMessage message)
    {
        Send(message);
        return await ReceiveAsync();
    }

    public void Dispose()
    {
        Process.Dispose();
        _toTapdisk.Dispose();
        _fromTapdisk.Dispose();
    }
}
