using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using BlkTapCtrl.Protocol.Control;
using BlkTapCtrl.Worker.IO;
using BlkTapCtrl.Worker.Logging;
using BlkTapCtrl.Worker.Server;
using BlkTapCtrl.Worker.Vbd;

namespace BlkTapCtrl.Bench;

/// <summary>
/// <c>blktap-bench diagnostics [--seconds N] [--error-every K]</c>: the tapdisk datapath (real server, real
/// event loop, real aio driver on /dev/full with the synchronous backend) with logging disabled, with the
/// diagnostics at their default level and a syslog daemon that keeps up, and with a syslog daemon that never
/// reads (a blocked /dev/log). Two workloads: 4 KiB reads only, and reads with every K-th request a write that
/// fails with ENOSPC (two error lines each, to the log file and syslog). Prints CPU per request, requests/s and
/// the paired ratios with their spread. <c>--breakdown</c> instead times one error line stage by stage.
/// </summary>
public static partial class DiagnosticsBench
{
    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec { public long Seconds; public long Nanoseconds; }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out Timespec ts);

    private const int ClockThreadCpuTime = 3;

    /// <summary>CPU time of the calling thread: immune to how much CPU the busy shared machine lets us have.</summary>
    private static double ThreadCpuSeconds()
    {
        ClockGetTime(ClockThreadCpuTime, out var ts);
        return ts.Seconds + ts.Nanoseconds / 1e9;
    }

    // SendPerLine: the default diagnostics but every error line sent on its own at once (how errors went out before
    // the worker's loop batched them into one sendmmsg per pass) — the before/after of that change, side by side.
    // DisabledAgain: a second, identical run with logging disabled: its "cost" is the noise floor of the figures.
    private enum Mode { Disabled, DisabledAgain, Default, SendPerLine, BlockedSyslog }

    // Many short interleaved runs (the order rotates each round); each mode is compared with the Disabled run of
    // the same round, and the median and the quartiles of those paired ratios are reported, so a claim of 2% can
    // be checked against the spread (and against DisabledAgain, which should read 0).
    private static readonly int Rounds = Environment.GetEnvironmentVariable("BENCH_DEBUG") != null ? 1 : 21;

    private static readonly Mode[] Modes = [Mode.Disabled, Mode.DisabledAgain, Mode.Default, Mode.SendPerLine, Mode.BlockedSyslog];

    public static int Run(string[] args)
    {
        double seconds = 0.25;
        int errorEvery = 100;
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--seconds" && i + 1 < args.Length) seconds = double.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture);
            else if (args[i] == "--error-every" && i + 1 < args.Length) errorEvery = int.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture);
            else if (args[i] == "--breakdown") return RunBreakdown();
            else { Console.Error.WriteLine("usage: blktap-bench diagnostics [--seconds N] [--error-every K] | --breakdown"); return 22; }
        }
        Console.WriteLine($"tapdisk datapath, aio:/dev/full, sync backend, 4 KiB requests, queue depth 16, {seconds}s per run, {Rounds} interleaved rounds;");
        Console.WriteLine("CPU per request of the datapath thread (robust on a shared machine): median, and each mode's cost against the Disabled run");
        Console.WriteLine("of the same round as median [quartiles]; DisabledAgain repeats Disabled, so its row is the noise floor.");
        // Warm-up: let tiered JIT reach its optimised code for every path before anything is measured.
        foreach (var mode in Modes)
            Measure(mode, errorEvery, 0.5);
        foreach (int every in new[] { 0, errorEvery })
        {
            var cpu = Modes.ToDictionary(m => m, _ => new List<double>());
            var cost = Modes.ToDictionary(m => m, _ => new List<double>());
            var rate = Modes.ToDictionary(m => m, _ => new List<double>());
            var dropped = new Dictionary<Mode, long>();
            var blockedVsDefault = new List<double>();
            for (int round = 0; round < Rounds; round++)
            {
                var thisRound = new Dictionary<Mode, double>();
                for (int k = 0; k < Modes.Length; k++)
                {
                    var mode = Modes[(k + round) % Modes.Length];
                    var (r, nanos, drops) = Measure(mode, every, seconds);
                    thisRound[mode] = nanos;
                    cpu[mode].Add(nanos);
                    rate[mode].Add(r);
                    dropped[mode] = drops;
                }
                foreach (var mode in Modes)
                    cost[mode].Add(thisRound[mode] / thisRound[Mode.Disabled] - 1);
                blockedVsDefault.Add(thisRound[Mode.BlockedSyslog] / thisRound[Mode.Default] - 1);
            }
            string workload = every == 0 ? "reads only" : $"reads + 1/{every} failing writes (2 error lines each)";
            Console.WriteLine($"{workload}:");
            foreach (var mode in Modes)
            {
                var c = cost[mode];
                Console.WriteLine($"  {mode,-14} {Quantile(cpu[mode], 0.5),6:F0} ns CPU/request" +
                                  (mode == Mode.Disabled ? new string(' ', 36) : $"  cost {Pct(Quantile(c, 0.5)),7} [{Pct(Quantile(c, 0.25))} .. {Pct(Quantile(c, 0.75))}]".PadRight(38)) +
                                  $"  wall {Quantile(rate[mode], 0.5),10:N0} req/s" +
                                  (mode is Mode.Disabled or Mode.DisabledAgain ? "" : $"  syslog drops: {dropped[mode]}"));
            }
            Console.WriteLine($"  a blocked /dev/log against one that keeps up (BlockedSyslog/Default): {Pct(Quantile(blockedVsDefault, 0.5))} " +
                              $"[{Pct(Quantile(blockedVsDefault, 0.25))} .. {Pct(Quantile(blockedVsDefault, 0.75))}]");
        }
        return 0;
    }

    // A signed percentage; a value that rounds to zero prints as +0.0% (the format's negative section gave "-+0.0%").
    private static string Pct(double ratio) =>
        Math.Round(ratio * 1000) == 0 ? "+0.0%" : ratio.ToString("+0.0%;-0.0%", System.Globalization.CultureInfo.InvariantCulture);

    private static double Quantile(List<double> values, double q)
    {
        var sorted = values.Order().ToArray();
        double at = q * (sorted.Length - 1);
        int lo = (int)Math.Floor(at), hi = (int)Math.Ceiling(at);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo);
    }

    private static (double Rate, double CpuNanosPerRequest, long Dropped) Measure(Mode mode, int errorEvery, double seconds)
    {
        var dir = Directory.CreateTempSubdirectory("bdiag").FullName;
        using var daemon = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        daemon.Bind(new UnixDomainSocketEndPoint(Path.Combine(dir, "log")));
        using var stopReader = new CancellationTokenSource();
        // Every mode has the same "daemon" thread, so all three share the CPU the same way; only in Default
        // does it read the syslog socket (a daemon that keeps up). Blocked: nobody ever reads it.
        using var idle = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        idle.Bind(new UnixDomainSocketEndPoint(Path.Combine(dir, "idle")));
        var watched = mode is Mode.Default or Mode.SendPerLine ? daemon : idle;
        var reader = new Thread(() =>
        {
            var buf = new byte[2048];
            while (!stopReader.IsCancellationRequested)
                if (watched.Poll(TimeSpan.FromMilliseconds(50), SelectMode.SelectRead)) watched.Receive(buf);
        }) { IsBackground = true };
        reader.Start();

        var log = new WorkerLog { Threshold = WorkerLog.Level.Warn, Sink = null };
        using var server = new TapdiskServer(new TapdiskServerOptions { Backend = IoBackendKind.Synchronous, Log = log });
        WorkerDiagnostics? diagnostics = mode is Mode.Disabled or Mode.DisabledAgain ? null : new WorkerDiagnostics(server,
            new WorkerDiagnosticsOptions { SyslogSocket = Path.Combine(dir, "log"), LogDir = Path.Combine(dir, "logs") });
        if (mode == Mode.SendPerLine && diagnostics?.LogFile is { } file)
            file.SyslogFlushedByLoop = false;
        using var memory = new AlignedBuffer(16 * 4096);
        var frontend = new LoopFrontend();
        var vbd = server.CreateVbd(1);
        if (vbd.Open(new VbdOpenParameters("/dev/full", DriverType.Aio)) != 0)
            throw new InvalidOperationException("cannot open aio:/dev/full");
        vbd.Attach(frontend);

        long submitted = 0;
        double cpuStart = ThreadCpuSeconds();
        var sw = Stopwatch.StartNew();
        long deadline = (long)(seconds * Stopwatch.Frequency);
        while (sw.ElapsedTicks < deadline)
        {
            while (frontend.Outstanding < 16 && vbd.TryRentRequest(frontend) is { } r)
            {
                bool fail = errorEvery > 0 && submitted % errorEvery == errorEvery - 1;
                r.Operation = fail ? VbdOperation.Write : VbdOperation.Read;
                r.Sector = (ulong)(submitted % 1024) * 8;
                r.AddSegment(memory.Pointer + (int)(submitted % 16) * 4096, 8);
                vbd.Submit(r);
                frontend.Outstanding++;
                submitted++;
            }
            vbd.ProcessSubmitted();
            // Like a frontend whose fd is always ready: the pass never sleeps, so the loop runs flat out.
            server.Loop.SetMaxTimeout(0);
            server.Iterate();
        }
        double rate = frontend.Completed / sw.Elapsed.TotalSeconds;
        double cpuPerRequest = (ThreadCpuSeconds() - cpuStart) * 1e9 / frontend.Completed;
        long drops = diagnostics?.Syslog.Statistics.Dropped ?? 0;
        if (Environment.GetEnvironmentVariable("BENCH_DEBUG") != null)
            Console.WriteLine($"    {mode} every={errorEvery}: {vbd.DebugSummary()} syslog={diagnostics?.Syslog.Statistics}");
        vbd.Close();
        stopReader.Cancel();
        reader.Join();
        diagnostics?.Dispose();
        Directory.Delete(dir, recursive: true);
        return (rate, cpuPerRequest, drops);
    }

    private sealed class LoopFrontend : IVbdFrontend
    {
        public int Outstanding;
        public long Completed;

        public void OnRequestCompleted(VbdRequest request)
        {
            Outstanding--;
            Completed++;
        }

        public void OnResponsesReady() { }
        public void OnVbdClosed() { }
    }
}
