using System.Globalization;
using System.Text.RegularExpressions;
using BlkTapCtrl.Integration.Tests.Diagnostics;
using BlkTapCtrl.Protocol.Control;
using BlkTapCtrl.Testing;

namespace BlkTapCtrl.Integration.Tests.Worker;

/// <summary>
/// Reference §3.1 signals on the real tapdisk process, spawned on FIFOs as the controller does, with its
/// log in the test's directory and each VBD's NBD export (<c>nbd&lt;minor&gt;.sock</c> beside the FIFOs)
/// for the I/O: SIGXFSZ from a real RLIMIT_FSIZE, SIGUSR1's debug dump, SIGINT closing every VBD.
/// </summary>
[TestFixture]
public class TapdiskSignalTests
{
    private const int MiB = 1 << 20;

    private static string MakeImage(TempDir dir, string name, int bytes)
    {
        string path = dir[name];
        using var f = File.Create(path);
        f.SetLength(bytes);
        return path;
    }

    private static async Task Kill(ChildProcess process, string signal)
    {
        var (code, _, err) = await ChildProcess.RunAsync("kill", ["-" + signal, process.Pid.ToString(CultureInfo.InvariantCulture)]);
        Assert.That(code, Is.Zero, err);
    }

    private static async Task<TapdiskControlClient> OpenAsync(TempDir dir, TapdiskControlClient tap, ushort cookie, string image, uint minor)
    {
        Assert.That((await tap.RequestAsync(ControlMessage.Simple(ControlMessageType.Pid, cookie))).Type, Is.EqualTo(ControlMessageType.PidResponse));
        var open = await tap.RequestAsync(ControlMessage.Open(cookie, DriverType.Aio, image, ControlOpenFlags.None, StorageType.Ext, minor, 1));
        Assert.That(open.Type, Is.EqualTo(ControlMessageType.OpenResponse), tap.Process.StdErr);
        return tap;
    }

    [TestCase("sync")]
    [TestCase("aio")]
    public async Task SIGXFSZ_from_a_real_file_size_limit_sends_RUNTIME_ERROR_exactly_once(string backend)
    {
        using var dir = new TempDir();
        string image = MakeImage(dir, "disk.img", 4 * MiB); // made by the test, before the limit applies
        // DOTNET_EnableWriteXorExecute=0: the JIT-built tapdisk's runtime double-maps code through a memfd sized past
        // 1 MiB and would not start under the limit (the NativeAOT tapdisk has no JIT and needs nothing).
        using var tap = await TapdiskControlClient.StartAsync(dir, new Dictionary<string, string?>
            {
                ["TAPDISK_IO_BACKEND"] = backend,
                ["DOTNET_EnableWriteXorExecute"] = "0",
            },
            "prlimit", $"--fsize={1 * MiB}", RepoPaths.Executable("tapdisk"));
        await OpenAsync(dir, tap, 9, image, 2);

        using (var nbd = new MinimalNbdClient(dir["nbd2.sock"]))
        {
            var block = new byte[4096];
            Array.Fill(block, (byte)0x5a);
            Assert.That(nbd.Write(0, block), Is.Zero, "below the limit");
            Assert.That(nbd.Write(2 * MiB, block), Is.Not.Zero, "past RLIMIT_FSIZE: EFBIG and SIGXFSZ");

            var runtimeError = await tap.ReceiveAsync();
            Assert.That((runtimeError.Type, runtimeError.Cookie, runtimeError.Text),
                Is.EqualTo((ControlMessageType.RuntimeError, (ushort)9, "received SIGXFSZ, closing queues")), tap.Process.StdErr);

            Assert.That(nbd.Write(3 * MiB, block), Is.Not.Zero, "the queues are killed: later requests fail at once");
            await Kill(tap.Process, "XFSZ"); // a second SIGXFSZ is logged but not reported again
            await Task.Delay(200);
        }
        var close = await tap.RequestAsync(ControlMessage.Simple(ControlMessageType.Close, 9));
        Assert.That((close.Type, close.Cookie), Is.EqualTo((ControlMessageType.CloseResponse, (ushort)9)),
            "the next record after the one RUNTIME_ERROR is CLOSE_RSP");
        Assert.That(await tap.Process.WaitAsync(TimeSpan.FromSeconds(10)), Is.Zero);

        Assert.That(new FileInfo(image).Length, Is.EqualTo(4 * MiB), "the image was not truncated or extended");
        var first = new byte[4096];
        using (var f = File.OpenRead(image)) f.ReadExactly(first);
        Assert.That(first, Has.All.EqualTo((byte)0x5a), "the write below the limit reached the image");
        string log = File.ReadAllText(tap.LogFile(dir.Path) ?? throw new AssertionException("no log file"));
        Assert.That(log.Split('\n').Count(l => l.Contains("] ERROR: errno 27 at tapdisk_server_signal_handler: received SIGXFSZ, closing queues", StringComparison.Ordinal)
                && !l.Contains("TAPDISK ERROR", StringComparison.Ordinal)), Is.EqualTo(2),
            "each SIGXFSZ is logged with EFBIG:\n" + log);
    }

    [Test]
    public async Task SIGUSR1_dumps_the_VBD_state_and_the_128_entry_wakeup_ring_into_the_kept_log()
    {
        using var dir = new TempDir();
        string image = MakeImage(dir, "disk.img", 1 * MiB);
        using var tap = await TapdiskControlClient.StartAsync(dir);
        await OpenAsync(dir, tap, 5, image, 1);
        const int requests = 150; // more loop wake-ups than the ring holds
        using var nbd = new MinimalNbdClient(dir["nbd1.sock"]); // still connected at the dump and at CLOSE: the VBD's frontend
        var block = new byte[4096];
        for (int i = 0; i < requests; i++)
            Assert.That(nbd.Read((ulong)(i % 256) * 4096, block), Is.Zero);

        await Kill(tap.Process, "USR1");
        string logPath = Path.Combine(dir.Path, $"TAPDISK.{tap.Process.Pid}.log");
        for (int i = 0; i < 200 && !File.Exists(logPath); i++) await Task.Delay(25);
        Assert.That(File.Exists(logPath), Is.True, "SIGUSR1 makes the log precious: kept as .log at once");
        string[] lines = File.ReadAllLines(logPath);

        var vbd = lines.Single(l => l.Contains("tapdisk_server_debug: VBD 5:", StringComparison.Ordinal));
        Assert.That(vbd, Does.Contain("new 0 pending 0 failed 0 completed 0").And.Contain($"received 0x{requests:x} returned 0x{requests:x} errors 0x0"));
        Assert.That(lines, Has.One.Contains("tapdisk_server_debug: index: ipc rfd:"));
        // index: vbd [0]:<mask> names the bit of the VBD's frontend, the NBD connection: a single fd, not one of the
        // control FIFOs, and the fd that woke the loop for the reads.
        var ipc = Regex.Match(lines.Single(l => l.Contains("index: ipc", StringComparison.Ordinal)), @"rfd:([0-9a-f]+) wfd:([0-9a-f]+)");
        ulong fifos = ulong.Parse(ipc.Groups[1].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture)
                      | ulong.Parse(ipc.Groups[2].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        var vbdIndex = lines.Select(l => Regex.Match(l, @"tapdisk_server_debug: index: vbd \[(\d+)\]:([0-9a-f]+)$")).Where(m => m.Success).ToList();
        Assert.That(vbdIndex.Select(m => m.Groups[1].Value), Is.EqualTo(new[] { "0" }), "one line per VBD");
        ulong frontend = ulong.Parse(vbdIndex[0].Groups[2].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        Assert.That(System.Numerics.BitOperations.PopCount(frontend), Is.EqualTo(1), "one NBD connection, one fd bit");
        Assert.That(frontend & fifos, Is.Zero);
        var ring = lines.Select(l => Regex.Match(l, @"tapdisk_server_debug: \[(\d+)/(\d+)\]:((?: \d+\.\d{6}:[0-9a-f]+)+)$"))
            .Where(m => m.Success).ToList();
        Assert.That(ring, Has.Count.EqualTo(16), "128 entries, 8 per line");
        Assert.That(ring.Select(m => int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture)), Has.All.EqualTo(8));
        long firstIndex = long.Parse(ring[0].Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.That(firstIndex, Is.GreaterThan(0), "older wake-ups were overwritten");
        Assert.That(ring.Select(m => long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)),
            Is.EqualTo(Enumerable.Range(0, 16).Select(i => firstIndex + 8 * i)), "oldest first, consecutive");
        var masks = ring.SelectMany(m => m.Groups[3].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Select(e => ulong.Parse(e[(e.IndexOf(':') + 1)..], NumberStyles.HexNumber, CultureInfo.InvariantCulture)).ToList();
        Assert.That(masks.Count(m => (m & frontend) != 0), Is.GreaterThanOrEqualTo(32),
            "each read wakes the loop on that fd (and once more on the I/O queue's eventfd for its completion)");

        Assert.That((await tap.RequestAsync(ControlMessage.Simple(ControlMessageType.Close, 5))).Type, Is.EqualTo(ControlMessageType.CloseResponse));
        Assert.That(await tap.Process.WaitAsync(TimeSpan.FromSeconds(10)), Is.Zero);
        Assert.That(File.Exists(logPath), Is.True, "a log made precious is kept after a clean close");
    }

    /// <summary>
    /// Also with SIGINT inherited ignored, as a background shell job (or a CI runner started with '&amp;')
    /// leaves it: the original installs its handler regardless (§3.1), and so must we. Before the fix the
    /// runtime kept the inherited SIG_IGN and this case waited forever for the CLOSE_RSPs.
    /// </summary>
    [TestCase(false)]
    [TestCase(true)]
    public async Task SIGINT_closes_every_VBD_cleanly_with_their_data_on_disk_and_exits_0(bool startedWithSigIntIgnored)
    {
        using var dir = new TempDir();
        string a = MakeImage(dir, "a.img", 1 * MiB), b = MakeImage(dir, "b.img", 1 * MiB);
        using var tap = startedWithSigIntIgnored
            ? await TapdiskControlClient.StartAsync(dir, executable: "bash",
                prefixArgs: ["-c", "trap '' INT; exec \"$0\" \"$@\"", RepoPaths.Executable("tapdisk")])
            : await TapdiskControlClient.StartAsync(dir);
        await OpenAsync(dir, tap, 1, a, 1);
        await OpenAsync(dir, tap, 2, b, 2);
        Assert.That((await tap.RequestAsync(ControlMessage.Simple(ControlMessageType.Pid, 3))).Type, Is.EqualTo(ControlMessageType.PidResponse),
            "a third VBD that never got OPEN");
        var block = new byte[64 * 1024];
        foreach (var (minor, fill) in new[] { (1, (byte)0xa1), (2, (byte)0xb2) })
        {
            using var nbd = new MinimalNbdClient(dir[$"nbd{minor}.sock"]);
            Array.Fill(block, fill);
            for (int i = 0; i < 16; i++) Assert.That(nbd.Write((ulong)(i * block.Length), block), Is.Zero);
        }

        await Kill(tap.Process, "INT");
        var replies = new List<ControlMessage> { await tap.ReceiveAsync(), await tap.ReceiveAsync(), await tap.ReceiveAsync() };
        Assert.That(replies.Select(r => r.Type), Has.All.EqualTo(ControlMessageType.CloseResponse));
        Assert.That(replies.Select(r => r.Cookie), Is.EquivalentTo(new ushort[] { 1, 2, 3 }), "one CLOSE_RSP per VBD");
        Assert.That(await tap.Process.WaitAsync(TimeSpan.FromSeconds(10)), Is.Zero);

        Assert.That(File.ReadAllBytes(a), Has.All.EqualTo((byte)0xa1));
        Assert.That(File.ReadAllBytes(b), Has.All.EqualTo((byte)0xb2));
        Assert.That(File.Exists(dir["nbd1.sock"]) || File.Exists(dir["nbd2.sock"]), Is.False, "the NBD exports went away with their VBDs");
        Assert.That(File.Exists(Path.Combine(dir.Path, $"TAPDISK.{tap.Process.Pid}.tmp")), Is.False, "a clean run without errors deletes its log");
    }
}
