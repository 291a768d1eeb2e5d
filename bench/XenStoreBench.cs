using System.Diagnostics;
using System.Globalization;
using BlkTapCtrl.XenStore.Client;
using BlkTapCtrl.XenStore.Server;

namespace BlkTapCtrl.Bench;

/// <summary>
/// <c>blktap-bench xenstore [--seconds N] [--xenstored PATH]</c>: our client against our built xenstored
/// process (in-process server if the executable is not found). Reads, writes and transactional
/// read-modify-writes per second on one pipelined connection and on 16 connections, the same reads issued one
/// at a time as libxenstore does (the ratio shows what pipelining buys), and watch latency (write → event at the
/// watcher, p50/p99) with 1000 watches registered. CPU per operation is client + daemon CPU time over the
/// operations. Targets (issue 3): ≥ 100k reads/s pipelined, p99 watch latency ≤ 1 ms.
/// </summary>
public static class XenStoreBench
{
    private const int Window = 256;

    public static int Run(string[] args)
    {
        double seconds = 1;
        string? xenstored = null;
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            switch (args[i])
            {
                case "--seconds": seconds = double.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                case "--xenstored": xenstored = args[i + 1]; break;
                default:
                    Console.Error.WriteLine($"xenstore bench: unknown option {args[i]}");
                    return 22;
            }
        }
        return RunAsync(TimeSpan.FromSeconds(seconds), xenstored ?? FindXenStored()).GetAwaiter().GetResult();
    }

    private static async Task<int> RunAsync(TimeSpan duration, string? xenstoredPath)
    {
        var dir = Directory.CreateTempSubdirectory("xsbench").FullName;
        var socket = Path.Combine(dir, "socket");
        Process? daemon = null;
        XenStoreServer? inProcess = null;
        try
        {
            if (xenstoredPath != null)
            {
                daemon = Process.Start(new ProcessStartInfo(xenstoredPath, ["--socket", socket]) { RedirectStandardError = true })!;
                daemon.ErrorDataReceived += (_, _) => { };
                daemon.BeginErrorReadLine();
                for (int i = 0; i < 500 && !File.Exists(socket); i++) await Task.Delay(10);
                Console.WriteLine($"daemon: {xenstoredPath} (pid {daemon.Id})");
            }
            else
            {
                inProcess = new XenStoreServer(new XenStoreServerOptions { SocketPath = socket });
                inProcess.Start();
                Console.WriteLine("daemon: in-process (xenstored executable not found)");
            }
            var cpu = new CpuMeter(daemon);
            var options = new XenStoreClientOptions { Path = socket, RequestTimeout = TimeSpan.FromSeconds(60) };
            var one = await XenStoreClient.ConnectAsync(options);
            var many = await Task.WhenAll(Enumerable.Range(0, 16).Select(_ => XenStoreClient.ConnectAsync(options)));
            await one.WriteAsync("/bench/value", "0123456789abcdef");
            for (int k = 0; k < 64; k++) await one.WriteAsync($"/bench/rmw/{k}", "0");

            Console.WriteLine($"{"operation",-38} {"ops/s",12} {"CPU µs/op",10}");
            // Warm up the JIT on both sides before measuring.
            await Measure("warm-up", TimeSpan.FromMilliseconds(300), [one], 8, (c, w, i) => c.ReadBytesAsync("/bench/value"), cpu, print: false);

            double serial = await Measure("read, 1 connection, one at a time", duration, [one], 1, (c, w, i) => c.ReadBytesAsync("/bench/value"), cpu);
            double pipelined = await Measure("read, 1 connection, pipelined", duration, [one], Window, (c, w, i) => c.ReadBytesAsync("/bench/value"), cpu);
            await Measure("read, 16 connections, pipelined", duration, many, Window / 16, (c, w, i) => c.ReadBytesAsync("/bench/value"), cpu);
            await Measure("write, 1 connection, pipelined", duration, [one], Window, (c, w, i) => c.WriteAsync($"/bench/w/{w % 64}", "value"), cpu);
            await Measure("write, 16 connections, pipelined", duration, many, Window / 16, (c, w, i) => c.WriteAsync($"/bench/w/{w % 64}", "value"), cpu);
            await Measure("transactional RMW, 1 connection", duration, [one], 16, (c, w, i) => Increment(c, $"/bench/rmw/{w % 64}"), cpu);
            await Measure("transactional RMW, 16 connections", duration, many, 4, (c, w, i) => Increment(c, $"/bench/rmw/{w % 64}"), cpu);
            Console.WriteLine($"pipelined/one-at-a-time read ratio: {pipelined / serial:F1}x; target 100000 reads/s: {pipelined / 100_000:F2}x of target");

            var (p50, p99, watches) = await WatchLatency(options, duration);
            Console.WriteLine($"watch latency with {watches} watches registered: p50 {p50:F0} µs, p99 {p99:F0} µs (target p99 ≤ 1000 µs: {(p99 <= 1000 ? "met" : "MISSED")})");

            await one.DisposeAsync();
            foreach (var c in many) await c.DisposeAsync();
            return 0;
        }
        finally
        {
            if (daemon != null)
            {
                try { daemon.Kill(); daemon.WaitForExit(5000); } catch (InvalidOperationException) { }
                daemon.Dispose();
            }
            if (inProcess != null) await inProcess.DisposeAsync();
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    private static async Task Increment(XenStoreClient c, string path)
    {
        await c.RunInTransactionAsync(async tx =>
        {
            var v = long.Parse(await tx.ReadAsync(path), CultureInfo.InvariantCulture);
            await tx.WriteAsync(path, (v + 1).ToString(CultureInfo.InvariantCulture));
        });
    }

    /// <summary>Runs <paramref name="window"/> workers per connection, each issuing its next call when the last completes.</summary>
    private static async Task<double> Measure(string name, TimeSpan duration, XenStoreClient[] clients, int window,
        Func<XenStoreClient, int, long, Task> op, CpuMeter cpu, bool print = true)
    {
        long count = 0;
        var stopAt = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        var cpuBefore = cpu.Sample();
        var sw = Stopwatch.StartNew();
        var workers = new List<Task>();
        int workerId = 0;
        foreach (var client in clients)
        {
            for (int w = 0; w < window; w++)
            {
                int id = workerId++;
                workers.Add(Task.Run(async () =>
                {
                    long i = 0;
                    while (Stopwatch.GetTimestamp() < stopAt)
                    {
                        await op(client, id, i++).ConfigureAwait(false);
                        Interlocked.Increment(ref count);
                    }
                }));
            }
        }
        await Task.WhenAll(workers);
        sw.Stop();
        var cpuUsed = cpu.Sample() - cpuBefore;
        double rate = count / sw.Elapsed.TotalSeconds;
        if (print)
            Console.WriteLine($"{name,-38} {rate,12:N0} {cpuUsed.TotalMicroseconds / Math.Max(count, 1),10:F1}");
        return rate;
    }

    private static async Task<(double P50, double P99, int Watches)> WatchLatency(XenStoreClientOptions options, TimeSpan duration)
    {
        await using var watcher = await XenStoreClient.ConnectAsync(options);
        await using var writer = await XenStoreClient.ConnectAsync(options);
        var watches = new List<XenStoreWatch>();
        for (int i = 0; i < 1000; i++)
        {
            var w = await watcher.WatchAsync($"/bench/watch/{i}", $"w{i}");
            await w.Events.ReadAsync();
            watches.Add(w);
        }
        var samples = new List<double>();
        var stopAt = DateTime.UtcNow + duration;
        for (int i = 0; DateTime.UtcNow < stopAt || samples.Count < 200; i++)
        {
            var w = watches[i % watches.Count];
            long start = Stopwatch.GetTimestamp();
            await writer.WriteAsync($"/bench/watch/{i % watches.Count}/k", "x");
            await w.Events.ReadAsync();
            samples.Add(Stopwatch.GetElapsedTime(start).TotalMicroseconds);
        }
        samples.Sort();
        foreach (var w in watches) await w.DisposeAsync();
        return (samples[samples.Count / 2], samples[(int)(samples.Count * 0.99)], watches.Count);
    }

    private static string? FindXenStored()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
        {
            var bin = Path.Combine(d.FullName, "artifacts", "bin", "BlkTapCtrl.Tools.XenStored");
            foreach (var config in new[] { "release", "debug" })
            {
                var candidate = Path.Combine(bin, config, "xenstored");
                if (File.Exists(candidate)) return candidate;
            }
        }
        return null;
    }

    /// <summary>CPU time of this process plus the daemon's (from /proc, 10 ms ticks: fine over a second of work).</summary>
    private sealed class CpuMeter(Process? daemon)
    {
        public TimeSpan Sample()
        {
            var own = Process.GetCurrentProcess().TotalProcessorTime;
            if (daemon == null) return own;
            var fields = File.ReadAllText($"/proc/{daemon.Id}/stat").Split(')')[1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            long ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
            return own + TimeSpan.FromSeconds(ticks / 100.0);
        }
    }
}
