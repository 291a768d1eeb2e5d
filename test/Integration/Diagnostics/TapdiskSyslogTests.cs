using BlkTapCtrl.Diagnostics.Stats;
using BlkTapCtrl.Testing;

namespace BlkTapCtrl.Integration.Tests.Diagnostics;

/// <summary>
/// The real tapdisk process (<c>tapdisk serve</c> exporting aio:/dev/full over NBD: reads give zeros, writes
/// fail with ENOSPC, answered at once) logging to a fake /dev/log that the test does not read.
/// </summary>
public sealed class TapdiskSyslogTests
{
    private const string ReturnLine = "returning BLKIF_RSP -1";

    /// <summary>tapdisk serving /dev/full over NBD (every write fails with ENOSPC), logging to the fake syslog daemon and dir/logs.</summary>
    private static async Task<ChildProcess> ServeFullDeviceAsync(TempDir dir, FakeSyslogDaemon daemon)
    {
        var tapdisk = new ChildProcess(RepoPaths.Executable("tapdisk"),
        [
            "serve", "aio:/dev/full", "--nbd", "unix:" + dir["nbd"], "--backend", "sync",
            "--syslog-socket", daemon.Path, "--log-dir", dir["logs"],
        ]);
        try
        {
            await WaitForAsync(() => tapdisk.StdOut.Contains("listening on", StringComparison.Ordinal), tapdisk, "listening");
        }
        catch
        {
            tapdisk.Dispose();
            throw;
        }
        return tapdisk;
    }

    [Test]
    public async Task CA_34846_blocked_syslog_tapdisk_keeps_serving_io_and_everything_arrives_in_order_after_exit()
    {
        using var dir = new TempDir("ts");
        using var daemon = new FakeSyslogDaemon(dir["log"]);
        using var tapdisk = await ServeFullDeviceAsync(dir, daemon);

        // 300 failures ⇒ 600 error lines (~85 KB): more than the kernel queues for an unread socket and more
        // than the 64 KiB ring, so packets queue and then drop.
        const int failures = 300;
        using (var nbd = new MinimalNbdClient(dir["nbd"]))
        {
            var block = new byte[4096];
            for (int i = 0; i < failures; i++)
            {
                Assert.That(nbd.Write((ulong)i * 4096, block), Is.EqualTo(28), "ENOSPC from /dev/full");
                Array.Fill(block, (byte)0xAA);
                Assert.That(nbd.Read((ulong)i * 4096, block), Is.Zero, "reads are served while syslog is blocked");
                Assert.That(block, Has.All.EqualTo((byte)0));
            }
        }

        // SIGUSR1: debug dump, the log becomes precious, the stats snapshot shows the blocked syslog.
        string statsPath = Path.Combine(dir["logs"], $"TAPDISK.{tapdisk.Pid}.stats.json");
        string logPath = Path.Combine(dir["logs"], $"TAPDISK.{tapdisk.Pid}.log");
        File.Delete(statsPath);
        Assert.That((await ChildProcess.RunAsync("kill", ["-USR1", tapdisk.Pid.ToString()])).Code, Is.Zero);
        await WaitForAsync(() => File.Exists(statsPath) && File.Exists(logPath), tapdisk, "stats snapshot after SIGUSR1");
        var stats = TapdiskStatsJson.Parse(File.ReadAllBytes(statsPath));
        Assert.That(stats.Vbds.Single().Errors, Is.EqualTo(failures));
        Assert.That(stats.Vbds.Single().Returned, Is.EqualTo(2 * failures));
        Assert.That(stats.Syslog!.Counters.Queued, Is.GreaterThan(0), "the daemon is blocked, packets wait in the ring");
        Assert.That(stats.Syslog.Counters.Dropped, Is.GreaterThan(0), "the ring overflowed");
        Assert.That(stats.Log!.Precious, Is.True);

        // The daemon starts reading: tapdisk's loop (WRITE readiness) sends the ring in order, then the drop report.
        var got = daemon.ReceiveAll(TimeSpan.FromMilliseconds(1000)).Select(FakeSyslogDaemon.Text).ToList();
        var returned = got.Where(g => g.Contains(ReturnLine, StringComparison.Ordinal)).ToList();
        Assert.That(returned, Has.Count.GreaterThanOrEqualTo(5), string.Join("\n", got));
        Assert.That(returned, Has.All.StartWith("ERROR: errno 28 at tapdisk_vbd_make_response: "));
        var sectors = returned.Select(r => Convert.ToUInt64(r[(r.IndexOf(" at 0x", StringComparison.Ordinal) + 6)..].Split(',')[0], 16)).ToList();
        Assert.That(sectors, Is.EqualTo(Enumerable.Range(0, sectors.Count).Select(i => (ulong)i * 8)), "in order, no gaps");
        Assert.That(returned, Has.Count.LessThan(failures));
        Assert.That(got[^1], Does.Match(@"^tapdisk-syslog: \d+ messages dropped$"));

        Assert.That((await ChildProcess.RunAsync("kill", ["-TERM", tapdisk.Pid.ToString()])).Code, Is.Zero);
        Assert.That(await tapdisk.WaitAsync(TimeSpan.FromSeconds(20)), Is.Zero);
        var last = daemon.ReceiveAll(TimeSpan.FromMilliseconds(500)).Select(FakeSyslogDaemon.Text).ToList();
        Assert.That(last[^1], Does.Match(@"^tapdisk-syslog: \d+ messages, \d+ bytes, xmits: \d+, failed: 0, dropped: [1-9]\d*$"),
            string.Join("\n", last));

        // The log file has every failure, even those syslog had to drop, and is kept.
        Assert.That(File.ReadAllLines(logPath)
            .Count(l => l.Contains(ReturnLine, StringComparison.Ordinal) && !l.Contains("TAPDISK ERROR", StringComparison.Ordinal)),
            Is.EqualTo(failures));
        Assert.That(File.Exists(statsPath), Is.False, "the live snapshot goes away with the process");
    }

    [Test]
    public async Task Buffered_error_lines_reach_the_log_file_within_a_second_and_all_survive_SIGTERM()
    {
        using var dir = new TempDir("tb");
        using var daemon = new FakeSyslogDaemon(dir["log"]);
        using var tapdisk = await ServeFullDeviceAsync(dir, daemon);
        string tmpPath = Path.Combine(dir["logs"], $"TAPDISK.{tapdisk.Pid}.tmp");
        string logPath = Path.Combine(dir["logs"], $"TAPDISK.{tapdisk.Pid}.log");
        int FailuresIn(string path) => !File.Exists(path) ? 0 : File.ReadAllLines(path)
            .Count(l => l.Contains(ReturnLine, StringComparison.Ordinal) && !l.Contains("TAPDISK ERROR", StringComparison.Ordinal));

        using (var nbd = new MinimalNbdClient(dir["nbd"]))
        {
            var block = new byte[4096];
            for (int i = 0; i < 20; i++)
                Assert.That(nbd.Write((ulong)i * 4096, block), Is.EqualTo(28), "ENOSPC from /dev/full");
            // Buffered (a burst costs one write()), yet on disk within the flush interval while tapdisk runs on:
            // a crash would lose at most that second.
            await WaitForAsync(() => FailuresIn(tmpPath) == 20, tapdisk, "the 20 failures in the running tapdisk's log file");

            // More failures, then SIGTERM at once: nothing buffered is lost, the log is kept as .log.
            for (int i = 20; i < 50; i++)
                Assert.That(nbd.Write((ulong)i * 4096, block), Is.EqualTo(28));
        }
        Assert.That((await ChildProcess.RunAsync("kill", ["-TERM", tapdisk.Pid.ToString()])).Code, Is.Zero);
        Assert.That(await tapdisk.WaitAsync(TimeSpan.FromSeconds(20)), Is.Zero);
        Assert.That(File.Exists(tmpPath), Is.False);
        Assert.That(FailuresIn(logPath), Is.EqualTo(50));
    }

    private static async Task WaitForAsync(Func<bool> condition, ChildProcess process, string what)
    {
        for (int i = 0; i < 300 && !condition(); i++)
        {
            if (process.HasExited) Assert.Fail($"tapdisk exited ({process.ExitCode}) waiting for {what}: {process.StdErr}");
            await Task.Delay(50);
        }
        Assert.That(condition(), Is.True, $"timed out waiting for {what}; stderr: {process.StdErr}");
    }
}
