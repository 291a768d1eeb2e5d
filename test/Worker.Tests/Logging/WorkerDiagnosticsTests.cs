using BlkTapCtrl.Diagnostics.Stats;
using BlkTapCtrl.Protocol.Control;
using BlkTapCtrl.Testing;
using BlkTapCtrl.Worker.IO;
using BlkTapCtrl.Worker.Logging;
using BlkTapCtrl.Worker.Scheduling;
using BlkTapCtrl.Worker.Server;
using BlkTapCtrl.Worker.Vbd;

namespace BlkTapCtrl.Worker.Tests.Logging;

/// <summary>
/// The worker's diagnostics wiring on a real server: real event loop, real aio driver on /dev/full (reads give
/// zeros, writes fail with ENOSPC, which is answered at once — CA-29373), a real log file, and a fake /dev/log.
/// </summary>
public sealed class WorkerDiagnosticsTests
{
    private const string ReturnLine = "returning BLKIF_RSP -1";

    private sealed class Rig : IDisposable
    {
        public readonly TempDir Dir = new("wd");
        public readonly FakeSyslogDaemon Daemon;
        public readonly TapdiskServer Server;
        public readonly WorkerDiagnostics Diagnostics;
        public readonly CollectingFrontend Frontend = new();
        public readonly AlignedBuffer Memory = new(1 << 16);
        private ulong _tag;

        public Rig()
        {
            Daemon = new FakeSyslogDaemon(Dir["log"]);
            Server = new TapdiskServer(new TapdiskServerOptions
            {
                Clock = new VirtualClock(), Backend = IoBackendKind.Synchronous,
                Log = new WorkerLog { Threshold = WorkerLog.Level.Warn },
            });
            Diagnostics = new WorkerDiagnostics(Server, new WorkerDiagnosticsOptions
            {
                SyslogSocket = Daemon.Path, LogDir = Dir["logs"],
            });
            var vbd = Server.CreateVbd(1);
            Assert.That(vbd.Open(new VbdOpenParameters("/dev/full", DriverType.Aio)), Is.Zero);
            vbd.Attach(Frontend);
        }

        /// <summary>Submits one 8-sector request and runs one pass; returns its tag.</summary>
        public ulong Request(VbdOperation op, ulong sector)
        {
            var vbd = Server.Vbds[0];
            var r = vbd.TryRentRequest(Frontend) ?? throw new AssertionException("no free slot");
            r.Tag = ++_tag;
            r.Operation = op;
            r.Sector = sector;
            r.AddSegment(Memory.Pointer, 8);
            vbd.Submit(r);
            vbd.ProcessSubmitted();
            Server.Iterate();
            return _tag;
        }

        public void Dispose()
        {
            Diagnostics.Dispose();
            Server.Dispose();
            Memory.Dispose();
            Daemon.Dispose();
            Dir.Dispose();
        }
    }

    [Test]
    public void CA_34846_two_identical_request_failures_reach_log_file_and_syslog_at_once_and_the_log_is_kept()
    {
        using var rig = new Rig();
        ulong a = rig.Request(VbdOperation.Write, 16);
        ulong b = rig.Request(VbdOperation.Write, 16);
        Assert.That(rig.Frontend.Answers, Is.EqualTo(new[] { (a, -28), (b, -28) }));

        // Already on syslog before anything closes: reported at once, both of them (no de-duplication).
        var datagrams = rig.Daemon.ReceiveAll(TimeSpan.FromMilliseconds(200)).Select(FakeSyslogDaemon.Text).ToList();
        var returned = datagrams.Where(d => d.Contains(ReturnLine, StringComparison.Ordinal)).ToList();
        Assert.That(returned, Has.Count.EqualTo(2), string.Join("\n", datagrams));
        // CA-27472 failure info: the real errno of the request, here ENOSPC.
        Assert.That(returned, Has.All.StartWith("ERROR: errno 28 at "));
        Assert.That(returned[0], Does.Contain("write 0x8 secs at 0x10"));

        var logFile = rig.Diagnostics.LogFile!;
        string tmp = logFile.TemporaryPath;
        Assert.That(logFile.Errors, Is.GreaterThanOrEqualTo(2));
        rig.Diagnostics.Dispose();
        Assert.That(File.Exists(tmp), Is.False);
        var lines = File.ReadAllLines(logFile.SavedPath);
        Assert.That(lines.Count(l => l.Contains("] ERROR: errno 28 at ", StringComparison.Ordinal) && !l.Contains("TAPDISK ERROR", StringComparison.Ordinal)
                                     && l.Contains(ReturnLine, StringComparison.Ordinal)), Is.EqualTo(2),
            string.Join("\n", lines));
        Assert.That(lines, Has.Some.Contains("TAPDISK ERROR: errno 28 at "), "the error buckets are reported on close");
    }

    [Test]
    public void CA_34846_blocked_syslog_never_stalls_the_datapath_and_the_loop_drains_it_in_order()
    {
        using var rig = new Rig();
        const int failures = 400;
        int answered = 0;
        for (int i = 0; i < failures; i++)
        {
            rig.Request(VbdOperation.Write, (ulong)i * 8);   // fails, logs twice
            rig.Request(VbdOperation.Read, (ulong)i * 8);    // served
            answered += 2;
            Assert.That(rig.Frontend.Answers, Has.Count.EqualTo(answered), "each request answered in its own pass");
        }
        Assert.That(rig.Frontend.Answers.Where(x => x.Error == 0).Count(), Is.EqualTo(failures));
        var stats = rig.Diagnostics.Syslog.Statistics;
        Assert.That(stats.Queued, Is.GreaterThan(0), "the daemon pushed back");
        Assert.That(stats.Dropped, Is.GreaterThan(0), "800 error lines do not fit the ring");
        Assert.That(rig.Server.Loop.PolledFds, Does.Contain(rig.Diagnostics.Syslog.FileDescriptor),
            "the loop watches the syslog socket while packets are queued");

        // Now the daemon reads; the loop's WRITE event drains the ring.
        var got = new List<string>();
        for (int pass = 0; pass < 10_000; pass++)
        {
            bool received = false;
            while (rig.Daemon.Receive(TimeSpan.Zero) is { } s)
            {
                got.Add(FakeSyslogDaemon.Text(s));
                received = true;
            }
            if (!received && !rig.Diagnostics.Syslog.WantsWritable)
                break;
            rig.Server.Iterate();
        }
        got.AddRange(rig.Daemon.ReceiveAll(TimeSpan.FromMilliseconds(200)).Select(FakeSyslogDaemon.Text));
        Assert.That(rig.Diagnostics.Syslog.WantsWritable, Is.False);
        rig.Server.Iterate();
        Assert.That(rig.Server.Loop.PolledFds, Does.Not.Contain(rig.Diagnostics.Syslog.FileDescriptor),
            "WRITE interest is dropped once the ring is empty");

        var reqs = got.Where(g => g.Contains(ReturnLine, StringComparison.Ordinal)).ToList();
        Assert.That(got[^1], Is.EqualTo($"tapdisk-syslog: {rig.Diagnostics.Syslog.Statistics.Dropped} messages dropped"));
        // The survivors are the first failures, in order: req slots recycle, so compare the sector of each.
        var sectors = reqs.Select(r => r[(r.IndexOf(" at 0x", StringComparison.Ordinal) + 6)..].Split(',')[0]).ToList();
        Assert.That(sectors, Is.EqualTo(Enumerable.Range(0, sectors.Count).Select(i => (i * 8).ToString("x"))));
        Assert.That(sectors, Has.Count.GreaterThan(10));
    }

    [Test]
    public void Buffered_error_lines_reach_the_file_within_the_flush_interval_then_no_timer_is_left_running()
    {
        using var rig = new Rig();
        var clock = (VirtualClock)rig.Server.Clock;
        var logFile = rig.Diagnostics.LogFile!;
        rig.Request(VbdOperation.Write, 16);
        Assert.That(logFile.HasBufferedLines, Is.True);
        Assert.That(new FileInfo(logFile.TemporaryPath).Length, Is.Zero, "buffered: the error pass cost no write()");

        // Idle passes: the virtual clock jumps to the next deadline, the flush timer's (1 s) among them.
        long start = clock.NowMicroseconds;
        while (logFile.HasBufferedLines && clock.NowMicroseconds - start < 5_000_000)
            rig.Server.Iterate();
        Assert.That(clock.NowMicroseconds - start, Is.LessThanOrEqualTo(1_000_000));
        var lines = File.ReadAllLines(logFile.TemporaryPath);
        Assert.That(lines.Count(l => l.Contains(ReturnLine, StringComparison.Ordinal)), Is.EqualTo(1), string.Join("\n", lines));

        // Nothing buffered, counters still: after the stats timer saw a quiet interval, no timer is armed, so an
        // idle pass waits the loop's full bound (600 s) instead of waking up every second.
        for (int i = 0; i < 3; i++) rig.Server.Iterate();
        long before = clock.NowMicroseconds;
        rig.Server.Iterate();
        Assert.That(clock.NowMicroseconds - before, Is.EqualTo(EventLoop.DefaultMaxTimeoutMicroseconds));

        // Activity restarts the stats refresh: the snapshot shows the new request within a second.
        File.Delete(rig.Diagnostics.StatsPath!);
        rig.Request(VbdOperation.Read, 0);
        before = clock.NowMicroseconds;
        while (!File.Exists(rig.Diagnostics.StatsPath!) && clock.NowMicroseconds - before < 5_000_000)
            rig.Server.Iterate();
        Assert.That(clock.NowMicroseconds - before, Is.LessThanOrEqualTo(1_000_000));
        Assert.That(TapdiskStatsJson.Parse(File.ReadAllBytes(rig.Diagnostics.StatsPath!)).Vbds.Single().Received, Is.EqualTo(2));
    }

    [Test]
    public void Buffered_lines_are_all_in_the_kept_log_after_close()
    {
        using var rig = new Rig();
        for (int i = 0; i < 50; i++)
            rig.Request(VbdOperation.Write, (ulong)i * 8);
        var logFile = rig.Diagnostics.LogFile!;
        rig.Diagnostics.Dispose();
        var failures = File.ReadAllLines(logFile.SavedPath).Where(l => l.Contains(ReturnLine, StringComparison.Ordinal)
                                                                       && !l.Contains("TAPDISK ERROR", StringComparison.Ordinal)).ToList();
        Assert.That(failures, Has.Count.EqualTo(50));
        Assert.That(failures.Select(l => l[(l.IndexOf(" at 0x", StringComparison.Ordinal) + 6)..].Split(',')[0]),
            Is.EqualTo(Enumerable.Range(0, 50).Select(i => (i * 8).ToString("x"))), "in order");
    }

    [Test]
    public void A_crash_of_the_loop_is_logged_and_the_buffered_log_is_written_and_kept_before_the_process_dies()
    {
        using var rig = new Rig();
        rig.Server.Log.Warn("tapdisk_vbd_open", "a buffered line");
        var logFile = rig.Diagnostics.LogFile!;
        Assert.That(logFile.HasBufferedLines, Is.True);
        rig.Server.Loop.Register(EventMode.Timeout, -1, 0, static (_, _, _) => throw new InvalidOperationException("boom"));

        // As in TapdiskProcess.Run: a filter that records and never catches.
        var thrown = Assert.Throws<InvalidOperationException>(() =>
        {
            try { rig.Server.Iterate(); }
            catch (Exception e) when (rig.Diagnostics.RecordCrash(e)) { throw; }
        });
        Assert.That(thrown!.Message, Is.EqualTo("boom"), "the crash goes on as it was");
        var lines = File.ReadAllLines(logFile.SavedPath);
        Assert.That(lines, Has.Some.EndsWith("] tapdisk_vbd_open: a buffered line"));
        Assert.That(lines, Has.Some.Contains("ERROR: errno 0 at tapdisk_server_run: unhandled System.InvalidOperationException: boom"));
        var datagrams = rig.Daemon.ReceiveAll(TimeSpan.FromMilliseconds(200)).Select(FakeSyslogDaemon.Text).ToList();
        Assert.That(datagrams, Has.Some.StartWith("ERROR: errno 0 at tapdisk_server_run: unhandled"), string.Join("\n", datagrams));
    }

    [Test]
    public void Debug_dump_keeps_the_log_and_writes_a_stats_snapshot_with_the_VBD_counters()
    {
        using var rig = new Rig();
        rig.Request(VbdOperation.Read, 0);
        rig.Request(VbdOperation.Write, 0);
        foreach (var line in rig.Server.DebugDump()) rig.Server.Log.Warn("tapdisk_server_debug", line);
        rig.Server.Log.MakePrecious();

        var logFile = rig.Diagnostics.LogFile!;
        Assert.That(File.Exists(logFile.SavedPath), Is.True, "precious ⇒ renamed to .log at once");
        Assert.That(File.ReadAllText(logFile.SavedPath), Does.Contain("tapdisk_server_debug: VBD 1:"));

        var stats = TapdiskStatsJson.Parse(File.ReadAllBytes(rig.Diagnostics.StatsPath!));
        Assert.That(stats.Pid, Is.EqualTo(Environment.ProcessId));
        var vbd = stats.Vbds.Single();
        Assert.That((vbd.Cookie, vbd.Received, vbd.Returned, vbd.KicksIn), Is.EqualTo((1, 2L, 2L, 2L)));
        Assert.That(vbd.Errors, Is.EqualTo(1));
        Assert.That(stats.Log!.Precious, Is.True);
        Assert.That(stats.Syslog!.Socket, Is.EqualTo(rig.Daemon.Path));
        Assert.That(stats.ErrorBuckets, Has.Some.Matches<ErrorBucketStats>(b => b.Errno == 28));
        Assert.That(stats.Wakeups, Is.GreaterThanOrEqualTo(2));
        Assert.That(stats.WakeupDump, Has.Some.StartsWith("[0/"));
    }

    [Test]
    public void Foreground_echo_repeats_log_lines_and_errors_besides_the_log_file_and_only_when_asked()
    {
        // `tapdisk serve` sets EchoTo = stderr; a worker under blktapctrl leaves it null.
        foreach (bool asked in new[] { true, false })
        {
            using var dir = new TempDir("wd");
            using var daemon = new FakeSyslogDaemon(dir["log"]);
            var echo = new StringWriter();
            using var server = new TapdiskServer(new TapdiskServerOptions { Clock = new VirtualClock() });
            using var diagnostics = new WorkerDiagnostics(server, new WorkerDiagnosticsOptions
            {
                SyslogSocket = daemon.Path, LogDir = dir["logs"], EchoTo = asked ? echo : null,
            });
            server.Log.Warn("f", "a warning");
            server.Log.Error(5, "g", "an error");
            var expected = new[] { "f: a warning", "ERROR: errno 5 at g: an error" };
            Assert.That(echo.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries),
                asked ? Is.EqualTo(expected) : Is.Empty);
            diagnostics.LogFile!.Flush();
            string logText = File.ReadAllText(diagnostics.LogFile.CurrentPath);
            Assert.That(logText, Does.Contain("f: a warning").And.Contain("ERROR: errno 5 at g: an error"), "the log file gets them either way");
        }
    }

    [Test]
    public void Unwritable_log_dir_falls_back_to_stderr_and_syslog_without_failing()
    {
        using var dir = new TempDir("wd");
        using var daemon = new FakeSyslogDaemon(dir["log"]);
        File.WriteAllText(dir["not-a-dir"], "");
        using var server = new TapdiskServer(new TapdiskServerOptions { Clock = new VirtualClock() });
        using var diagnostics = new WorkerDiagnostics(server, new WorkerDiagnosticsOptions
        {
            SyslogSocket = daemon.Path, LogDir = dir["not-a-dir"],
        });
        Assert.That(diagnostics.LogFile, Is.Null);
        Assert.That(FakeSyslogDaemon.Text(daemon.Receive(TimeSpan.FromSeconds(5))!), Does.StartWith("tapdisk: cannot create log file in "));
        server.Log.Error(5, "f", "still reported");
        Assert.That(FakeSyslogDaemon.Text(daemon.Receive(TimeSpan.FromSeconds(5))!), Is.EqualTo("ERROR: errno 5 at f: still reported"));
    }

    [Test]
    public void Diagnostics_options_are_taken_out_of_the_tapdisk_command_line()
    {
        var rest = WorkerDiagnosticsOptions.Take(["-l", "local3", "--syslog-socket", "/tmp/s", "r", "--log-dir", "/tmp/l", "w"], out var o);
        Assert.That(rest, Is.EqualTo(new[] { "-l", "local3", "r", "w" }));
        Assert.That((o.SyslogSocket, o.LogDir), Is.EqualTo(("/tmp/s", "/tmp/l")));
        Assert.Throws<ArgumentException>(() => WorkerDiagnosticsOptions.Take(["--log-dir"], out _));
        Assert.That(WorkerDiagnosticsOptions.ParseFacility("local3"), Is.EqualTo(Diagnostics.Syslog.SyslogFacility.Local3));
        Assert.Throws<ArgumentException>(() => WorkerDiagnosticsOptions.ParseFacility("nonsense"));
        // blktapctrl passes the C LOG_* value: LOG_DAEMON = 3 << 3, LOG_LOCAL5 = 21 << 3.
        Assert.That(WorkerDiagnosticsOptions.ParseFacility("24"), Is.EqualTo(Diagnostics.Syslog.SyslogFacility.Daemon));
        Assert.That(WorkerDiagnosticsOptions.ParseFacility("168"), Is.EqualTo(Diagnostics.Syslog.SyslogFacility.Local5));
        Assert.That(WorkerDiagnosticsOptions.ParseFacility("3"), Is.EqualTo(Diagnostics.Syslog.SyslogFacility.Daemon));
        Assert.Throws<ArgumentException>(() => WorkerDiagnosticsOptions.ParseFacility("999"));
    }
}
