using BlkTapCtrl.Diagnostics.LogFile;
using BlkTapCtrl.Diagnostics.Serilog;
using BlkTapCtrl.Diagnostics.Syslog;
using BlkTapCtrl.Testing;
using Serilog;

namespace BlkTapCtrl.Diagnostics.Tests.LogFile;

public class TapdiskLogFileTests
{
    private static readonly FixedClock Clock = new(new DateTimeOffset(2026, 11, 25, 12, 0, 0, 250, TimeSpan.Zero));
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(200);

    private static SyslogClient Syslog(string path) => new(new SyslogClientOptions
    {
        SocketPath = path, ProcessId = 31, Clock = Clock, CloseDrainTimeout = TimeSpan.FromMilliseconds(100),
    });

    [Test]
    public void Lines_carry_both_time_stamps_and_healthy_logs_are_deleted_on_close()
    {
        using var dir = new TempDir();
        var log = new TapdiskLogFile(dir.Path, 31, TlogLevel.Info, syslog: null, Clock);
        Assert.That(log.TemporaryPath, Is.EqualTo(dir["TAPDISK.31.tmp"]));
        log.Write(TlogLevel.Info, "tapdisk_vbd_open", "opened vhd:/x");
        log.Write(TlogLevel.Debug, "tapdisk_vbd_open", "below the level");
        log.Flush();
        Assert.That(File.ReadAllText(log.TemporaryPath),
            Is.EqualTo("Nov 25 12:00:00: [12:00:00.250] tapdisk_vbd_open: opened vhd:/x\n"));
        Assert.That(log.Close(), Is.Null);
        Assert.That(Directory.GetFiles(dir.Path), Is.Empty, "no errors, not precious ⇒ deleted");
    }

    [Test]
    public void Lines_are_buffered_until_flush_except_at_debug_level()
    {
        using var dir = new TempDir();
        using var log = new TapdiskLogFile(dir.Path, 32, TlogLevel.Warn, syslog: null, Clock);
        Assert.That(log.HasBufferedLines, Is.False);
        log.Write(TlogLevel.Warn, "f", "buffered");
        Assert.That(new FileInfo(log.TemporaryPath).Length, Is.Zero);
        Assert.That(log.HasBufferedLines, Is.True, "the worker's loop arms its flush timer on this");
        log.Flush();
        Assert.That(log.HasBufferedLines, Is.False);
        Assert.That(File.ReadAllLines(log.TemporaryPath), Has.Length.EqualTo(1));
        log.Level = TlogLevel.Debug;
        log.Write(TlogLevel.Debug, "f", "line-buffered");
        Assert.That(File.ReadAllLines(log.TemporaryPath), Has.Length.EqualTo(2));
    }

    [Test]
    public void CA_34846_syslog_in_tlog_error_two_identical_errors_give_two_datagrams_two_lines_and_the_log_is_kept()
    {
        using var dir = new TempDir();
        using var daemon = new FakeSyslogDaemon(dir["log"]);
        using var syslog = Syslog(daemon.Path);
        var log = new TapdiskLogFile(dir["logs"], 33, TlogLevel.Warn, syslog, Clock);

        log.Error(5, "vbd_complete", "req 7: read 0x8 secs to 0x10");
        // Reported at once, not when the buffer fills or the log closes.
        Assert.That(FakeSyslogDaemon.Text(daemon.Receive(TimeSpan.FromSeconds(5))!),
            Is.EqualTo("ERROR: errno 5 at vbd_complete: req 7: read 0x8 secs to 0x10"));
        log.Error(5, "vbd_complete", "req 7: read 0x8 secs to 0x10");
        Assert.That(FakeSyslogDaemon.Text(daemon.Receive(TimeSpan.FromSeconds(5))!),
            Is.EqualTo("ERROR: errno 5 at vbd_complete: req 7: read 0x8 secs to 0x10"), "no de-duplication");
        Assert.That(log.Errors, Is.EqualTo(2));

        var kept = log.Close();
        Assert.That(kept, Is.EqualTo(Path.Combine(dir["logs"], "TAPDISK.33.log")));
        Assert.That(File.Exists(log.TemporaryPath), Is.False);
        var lines = File.ReadAllLines(kept!);
        Assert.That(lines.Count(l => l == "Nov 25 12:00:00: [12:00:00.250] ERROR: errno 5 at vbd_complete: req 7: read 0x8 secs to 0x10"),
            Is.EqualTo(2));
        Assert.That(lines[^1], Does.StartWith("Nov 25 12:00:00: [12:00:00.250] TAPDISK ERROR: errno 5 at vbd_complete (cnt = 2): [Nov 25 12:00:00.250000/Nov 25 12:00:00.250000/0.000]"));
    }

    [Test]
    public void Precious_log_is_renamed_at_once_announced_on_syslog_and_kept()
    {
        using var dir = new TempDir();
        using var daemon = new FakeSyslogDaemon(dir["log"]);
        using var syslog = Syslog(daemon.Path);
        var log = new TapdiskLogFile(dir.Path, 34, TlogLevel.Warn, syslog, Clock);
        log.Write(TlogLevel.Warn, "watchdog", "pending requests idle for 10 seconds");
        log.MakePrecious();
        Assert.That(File.Exists(dir["TAPDISK.34.log"]), Is.True);
        Assert.That(File.ReadAllText(dir["TAPDISK.34.log"]), Does.Contain("watchdog: pending requests idle"));
        Assert.That(FakeSyslogDaemon.Text(daemon.Receive(TimeSpan.FromSeconds(5))!),
            Is.EqualTo($"logfile saved to {dir["TAPDISK.34.log"]}: 0"));
        log.Write(TlogLevel.Warn, "f", "after the rename");
        Assert.That(log.Close(), Is.EqualTo(dir["TAPDISK.34.log"]));
        Assert.That(File.ReadAllText(dir["TAPDISK.34.log"]), Does.Contain("f: after the rename"));
    }

    [Test]
    public void Serilog_errors_take_the_tlog_error_path_and_other_levels_follow_the_tlog_level()
    {
        using var dir = new TempDir();
        using var daemon = new FakeSyslogDaemon(dir["log"]);
        using var syslog = Syslog(daemon.Path);
        var file = new TapdiskLogFile(dir.Path, 35, TlogLevel.Warn, syslog, Clock);
        using (var log = new LoggerConfiguration().MinimumLevel.Verbose().WriteTo.TapdiskLog(file).CreateLogger())
        {
            log.ForContext(EventText.FunctionProperty, "vbd").Warning("slow {Ms} ms", 12);
            log.ForContext(EventText.FunctionProperty, "vbd").Information("not at WARN");
            log.ForContext(EventText.FunctionProperty, "vbd").ForContext(EventText.ErrnoProperty, 28)
                .Error("returning BLKIF_RSP -1");
        }
        Assert.That(FakeSyslogDaemon.Text(daemon.Receive(TimeSpan.FromSeconds(5))!),
            Is.EqualTo("ERROR: errno 28 at vbd: returning BLKIF_RSP -1"));
        Assert.That(daemon.Receive(Quiet), Is.Null, "warnings go to the file only");
        var kept = file.Close();
        var lines = File.ReadAllLines(kept!);
        Assert.That(lines[0], Does.EndWith("] vbd: slow 12 ms"));
        Assert.That(lines[1], Does.EndWith("] ERROR: errno 28 at vbd: returning BLKIF_RSP -1"));
        Assert.That(lines, Has.Length.EqualTo(3), "two lines and the bucket report");
    }

    [Test]
    public void Long_lines_are_cut_to_1024_bytes()
    {
        using var dir = new TempDir();
        var log = new TapdiskLogFile(dir.Path, 36, TlogLevel.Warn, syslog: null, Clock);
        log.Write(TlogLevel.Warn, "f", new string('x', 5000));
        log.MakePrecious();
        Assert.That(new FileInfo(dir["TAPDISK.36.log"]).Length, Is.EqualTo(TapdiskLogFile.MaxLineBytes));
        log.Close();
    }
}
