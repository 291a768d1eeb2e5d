using System.Diagnostics;
using System.Net.Sockets;
using BlkTapCtrl.Diagnostics.Errors;
using BlkTapCtrl.Diagnostics.LogFile;
using BlkTapCtrl.Diagnostics.Syslog;
using BlkTapCtrl.Worker.Logging;
using BlkTapCtrl.Worker.Server;

namespace BlkTapCtrl.Bench;

/// <summary>
/// <c>blktap-bench diagnostics --breakdown</c>: where one datapath error line's CPU goes, stage by stage (the
/// clock, formatting the message, the log file, the syslog packet, the error bucket, the sendmmsg), each stage
/// run alone in a tight loop on the calling thread and timed with its CPU clock.
/// </summary>
public static partial class DiagnosticsBench
{
    private const int BreakdownLines = 200_000;

    private static int RunBreakdown()
    {
        var dir = Directory.CreateTempSubdirectory("bdiag").FullName;
        try
        {
            using var daemon = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            daemon.Bind(new UnixDomainSocketEndPoint(Path.Combine(dir, "log")));
            using var stop = new CancellationTokenSource();
            long received = 0;
            var reader = new Thread(() =>
            {
                var buf = new byte[2048];
                while (!stop.IsCancellationRequested)
                    if (daemon.Poll(TimeSpan.FromMilliseconds(50), SelectMode.SelectRead))
                    {
                        daemon.Receive(buf);
                        Interlocked.Increment(ref received);
                    }
            }) { IsBackground = true };
            reader.Start();

            Console.WriteLine($"one datapath error line, stage by stage, and the cost of a loop pass ({BreakdownLines:N0} lines each, CPU ns per line or pass, best of 3):");
            ulong sector = 0;
            Stage("clock: TimeProvider.System.GetUtcNow", () => TimeProvider.System.GetUtcNow());
            Stage("clock: TimeProvider.System.GetLocalNow", () => TimeProvider.System.GetLocalNow());

            var formatOnly = new WorkerLog { Threshold = WorkerLog.Level.Warn, Sink = null };
            formatOnly.ErrorSink = static (_, _, _) => { };
            Stage("format: WorkerLog.Error, sink does nothing", () => ErrorLine(formatOnly, ref sector));

            var noSinks = new WorkerLog { Threshold = WorkerLog.Level.Warn, Sink = null };
            Stage("format: WorkerLog.Error, no sink at all", () => ErrorLine(noSinks, ref sector));

            using (var file = new TapdiskLogFile(Path.Combine(dir, "file"), 1, TlogLevel.Warn, syslog: null))
                Stage("log file line (+bucket), no syslog", () => file.ErrorLine(5, "tapdisk_vbd_complete_td_request", "ERROR: errno 5 at tapdisk_vbd_complete_td_request: req 7: write 0x8 secs to 0x1234"));

            var buckets = new ErrorBuckets();
            Stage("error bucket add", () => buckets.Add(5, "tapdisk_vbd_complete_td_request", "x", Timeval.FromDateTimeOffset(TimeProvider.System.GetUtcNow())));

            using (var blocked = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified))
            {
                blocked.Bind(new UnixDomainSocketEndPoint(Path.Combine(dir, "blocked")));
                using var syslog = new SyslogClient(new SyslogClientOptions { SocketPath = Path.Combine(dir, "blocked"), CloseDrainTimeout = TimeSpan.Zero });
                Stage("syslog packet formatted, dropped (blocked daemon, ring full)", () =>
                {
                    syslog.LogDeferred(SyslogSeverity.Error, "ERROR: errno 5 at tapdisk_vbd_complete_td_request: req 7: write 0x8 secs to 0x1234");
                    syslog.Flush();
                });
            }
            using (var syslog = new SyslogClient(new SyslogClientOptions { SocketPath = Path.Combine(dir, "log") }))
            {
                SentStage("syslog packet queued + flushed alone (one sendmmsg)", () =>
                {
                    syslog.LogDeferred(SyslogSeverity.Error, "ERROR: errno 5 at tapdisk_vbd_complete_td_request: req 7: write 0x8 secs to 0x1234");
                    syslog.Flush();
                }, () => Interlocked.Read(ref received));
                Console.WriteLine($"    (syslog: {syslog.Statistics})");
            }

            var log = new WorkerLog { Threshold = WorkerLog.Level.Warn, Sink = null };
            using (var server = new TapdiskServer(new TapdiskServerOptions { Backend = IoBackendKind.Synchronous, Log = log }))
            using (var diagnostics = new WorkerDiagnostics(server,
                       new WorkerDiagnosticsOptions { SyslogSocket = Path.Combine(dir, "log"), LogDir = Path.Combine(dir, "logs") }))
            {
                SentStage("whole line: WorkerLog.Error through the diagnostics + flush", () =>
                {
                    ErrorLine(log, ref sector);
                    diagnostics.Syslog.Flush();
                }, () => Interlocked.Read(ref received));
                Console.WriteLine($"    (syslog: {diagnostics.Syslog.Statistics})");
            }
            // What the diagnostics add to every loop pass, errors or not (a pass serves up to 16 requests here).
            foreach (bool withDiagnostics in new[] { false, true, false, true })
            {
                var quiet = new WorkerLog { Threshold = WorkerLog.Level.Warn, Sink = null };
                using var server = new TapdiskServer(new TapdiskServerOptions { Backend = IoBackendKind.Synchronous, Log = quiet });
                using var diagnostics = withDiagnostics
                    ? new WorkerDiagnostics(server, new WorkerDiagnosticsOptions { SyslogSocket = Path.Combine(dir, "log"), LogDir = Path.Combine(dir, "pass") })
                    : null;
                Stage($"empty loop pass, diagnostics {(withDiagnostics ? "on" : "off")}", () =>
                {
                    server.Loop.SetMaxTimeout(0);
                    server.Iterate();
                });
            }
            stop.Cancel();
            reader.Join();
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
        return 0;
    }

    /// <summary>
    /// A stage that sends a datagram: the daemon (another thread) must take each one before the next (its queue
    /// holds only net.unix.max_dgram_qlen packets), so the wait is left out: wall time of the call itself, median.
    /// </summary>
    private static void SentStage(string name, Action line, Func<long> received)
    {
        const int lines = 20_000;
        var samples = new long[lines];
        var warm = Stopwatch.StartNew();
        while (warm.ElapsedMilliseconds < 300)
        {
            long before = received();
            line();
            var spin = new SpinWait();
            while (received() == before) spin.SpinOnce(sleep1Threshold: -1);
        }
        for (int round = -1; round < lines; round++)
        {
            long before = received();
            long t0 = Stopwatch.GetTimestamp();
            line();
            long t1 = Stopwatch.GetTimestamp();
            if (round >= 0) samples[round] = t1 - t0;
            var spin = new SpinWait();
            while (received() == before) spin.SpinOnce(sleep1Threshold: -1);
        }
        Array.Sort(samples);
        double median = samples[lines / 2] * 1e9 / Stopwatch.Frequency, p90 = samples[lines * 9 / 10] * 1e9 / Stopwatch.Frequency;
        Console.WriteLine($"  {name,-62} {median,8:F0} ns (wall, median; p90 {p90:F0})");
    }

    // The shape of the datapath's own error line (VirtualBlockDevice.CompleteTap).
    private static void ErrorLine(WorkerLog log, ref ulong sector)
    {
        sector += 8;
        log.Error(5, "tapdisk_vbd_complete_td_request", $"req {sector % 32}: write 0x{8:x} secs to 0x{sector:x}");
    }

    private static void Stage(string name, Action line)
    {
        // Warm-up by time, not count: tiered JIT promotes hot methods only after a delay.
        var warm = Stopwatch.StartNew();
        while (warm.ElapsedMilliseconds < 500) line();
        double best = double.MaxValue;
        for (int round = 0; round < 3; round++)
        {
            double start = ThreadCpuSeconds();
            for (int i = 0; i < BreakdownLines; i++) line();
            best = Math.Min(best, (ThreadCpuSeconds() - start) * 1e9 / BreakdownLines);
        }
        Console.WriteLine($"  {name,-62} {best,8:F0} ns");
        GC.KeepAlive(line);
    }
}
