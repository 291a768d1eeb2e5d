using System.Diagnostics;
using System.Globalization;
using BlkTapCtrl.XenStore.Client;

namespace BlkTapCtrl.Bench;

/// <summary>
/// blktapctrl with N VBDs (default 200) on our xenstored and the real tapdisk: backend node written →
/// tapdisk-pid present, pause written → pause-done present (p50/p99), and the controller's idle RSS and CPU.
/// The original blktapctrl cannot run here (it needs the blktap kernel driver), so there is no peer to race;
/// the targets (p99 pause → pause-done ≤ 20 ms, idle CPU ≈ 0) are printed beside the results as ratios.
/// Usage: blktap-bench controller [--vbds N] [--idle-seconds S] [--bin DIR] [--blktapctrl PATH] [--tapdisk PATH]
/// (--tapdisk names the worker, e.g. the NativeAOT one deploy/install publishes, which is what runs in dom0:
/// a JIT worker compiles its pause path on the first pause of every process.)
/// </summary>
public static class ControllerBench
{
    public static async Task<int> RunAsync(string[] args)
    {
        int vbds = 200;
        double idleSeconds = 10;
        string? bin = null, tapdisk = null, blktapctrl = null;
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            switch (args[i])
            {
                case "--vbds": vbds = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                case "--idle-seconds": idleSeconds = double.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                case "--bin": bin = args[i + 1]; break;
                case "--tapdisk": tapdisk = args[i + 1]; break;
                case "--blktapctrl": blktapctrl = args[i + 1]; break;
                default: Console.Error.WriteLine($"controller bench: unknown option {args[i]}"); return 22;
            }
        }

        string dir = Directory.CreateTempSubdirectory("ctlbench").FullName;
        string socket = Path.Combine(dir, "xs.sock");
        Process? xenstored = null, controller = null;
        try
        {
            xenstored = Start(Find("xenstored", bin), _ => { }, ["--socket", socket]);
            await using var xs = await ConnectAsync(socket, xenstored);
            await xs.WriteAsync("/local/domain/0/name", "Domain-0");
            await xs.WriteAsync("/local/domain/0/domid", "0");
            var ready = new TaskCompletionSource();
            controller = Start(blktapctrl ?? Find("blktapctrl", bin), line => { if (line.Contains("watching /local/domain/0/backend/tap", StringComparison.Ordinal)) ready.TrySetResult(); }, ["--xenstore", socket, "--tapdisk", tapdisk ?? Find("tapdisk", bin),
                "--run-dir", Path.Combine(dir, "run"), "--log-dir", Path.Combine(dir, "log"),
                "--pid-file", Path.Combine(dir, "run", "blktapctrl.pid"), "--pid-timeout", "300", "--wait-timeout", "300"]);
            await ready.Task.WaitAsync(TimeSpan.FromSeconds(60));

            string image = Path.Combine(dir, "disk.img");
            File.WriteAllBytes(image, new byte[1 << 20]);

            // 1. backend written → tapdisk-pid, one VBD at a time while the population grows to N.
            var up = new List<double>();
            for (int dev = 1; dev <= vbds; dev++)
            {
                string p = $"/local/domain/0/backend/tap/1/{dev}";
                await using var watch = await xs.WatchAsync(p + "/tapdisk-pid");
                var sw = Stopwatch.StartNew();
                await xs.RunInTransactionAsync(async tx =>
                {
                    await tx.WriteAsync(p + "/frontend", $"/local/domain/1/device/vbd/{dev}");
                    await tx.WriteAsync(p + "/params", "aio:" + image);
                    await tx.WriteAsync(p + "/mode", "r");
                    await tx.WriteAsync(p + "/tapdisk-request", "start");
                    await tx.WriteAsync(p, "");
                });
                await WaitForAsync(xs, watch, p + "/tapdisk-pid", present: true);
                up.Add(sw.Elapsed.TotalMilliseconds);
            }

            // 2. Idle: nothing happens for a while; the controller should use no CPU (no polling loops).
            await Task.Delay(1000);
            var (cpu0, _) = CpuAndRss(controller.Id);
            var idleClock = Stopwatch.StartNew();
            await Task.Delay(TimeSpan.FromSeconds(idleSeconds));
            var (cpu1, rss) = CpuAndRss(controller.Id);
            double idleCpuPercent = 100.0 * (cpu1 - cpu0) / idleClock.Elapsed.TotalSeconds;

            // 3. pause written → pause-done, then unpause, for every VBD in turn.
            var pause = new List<double>();
            for (int dev = 1; dev <= vbds; dev++)
            {
                string p = $"/local/domain/0/backend/tap/1/{dev}";
                await using var watch = await xs.WatchAsync(p + "/pause-done");
                var sw = Stopwatch.StartNew();
                await xs.WriteAsync(p + "/pause", "");
                await WaitForAsync(xs, watch, p + "/pause-done", present: true);
                pause.Add(sw.Elapsed.TotalMilliseconds);
                await xs.RemoveAsync(p + "/pause");
                await WaitForAsync(xs, watch, p + "/pause-done", present: false);
            }

            // 4. Clean stop with N VBDs: SIGTERM closes every VBD, waits for the workers, exits 0.
            var stop = Stopwatch.StartNew();
            Signals.Kill(controller.Id, 15);
            await controller.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(120)).Token);
            Report(vbds, up, pause, idleCpuPercent, rss, idleSeconds);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  SIGTERM with {vbds} VBDs -> exit  : {stop.Elapsed.TotalMilliseconds:0} ms, status {controller.ExitCode}"));
            return controller.ExitCode;
        }
        finally
        {
            foreach (var p in new[] { controller, xenstored })
            {
                if (p is { HasExited: false }) { p.Kill(entireProcessTree: true); p.WaitForExit(10000); }
                p?.Dispose();
            }
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    private static void Report(int vbds, List<double> up, List<double> pause, double idleCpu, long rssKb, double idleSeconds)
    {
        static double Pct(List<double> v, double q)
        {
            var s = v.OrderBy(x => x).ToList();
            return s[Math.Clamp((int)Math.Ceiling(q * s.Count) - 1, 0, s.Count - 1)];
        }
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine(string.Create(inv, $"controller bench: {vbds} VBDs, real tapdisk workers, our xenstored"));
        Console.WriteLine(string.Create(inv, $"  backend written -> tapdisk-pid : p50 {Pct(up, 0.5),8:0.00} ms  p99 {Pct(up, 0.99),8:0.00} ms  max {up.Max(),8:0.00} ms"));
        Console.WriteLine(string.Create(inv, $"  pause written -> pause-done    : p50 {Pct(pause, 0.5),8:0.00} ms  p99 {Pct(pause, 0.99),8:0.00} ms  max {pause.Max(),8:0.00} ms"));
        Console.WriteLine(string.Create(inv, $"  pause p99 / target 20 ms      : {Pct(pause, 0.99) / 20.0:0.00}x (<= 1 meets the target)"));
        Console.WriteLine(string.Create(inv, $"  idle over {idleSeconds:0} s             : CPU {idleCpu:0.000} %  RSS {rssKb / 1024.0:0.0} MiB"));
    }

    private static (double CpuSeconds, long RssKb) CpuAndRss(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat").Split(") ")[1].Split(' ');
        // utime and stime are fields 14 and 15 of /proc/pid/stat (index 11 and 12 after the command).
        double ticks = double.Parse(stat[11], CultureInfo.InvariantCulture) + double.Parse(stat[12], CultureInfo.InvariantCulture);
        long rss = File.ReadAllLines($"/proc/{pid}/status").Where(l => l.StartsWith("VmRSS:", StringComparison.Ordinal))
            .Select(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture)).First();
        return (ticks / 100.0, rss);
    }

    private static async Task WaitForAsync(XenStoreClient xs, XenStoreWatch watch, string path, bool present)
    {
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        while (await xs.ExistsAsync(path, limit.Token) != present)
            await watch.Events.ReadAsync(limit.Token);
    }

    private static async Task<XenStoreClient> ConnectAsync(string socket, Process xenstored)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            // A xenstored that exits at once (a stale or half-built binary found by Find) would otherwise
            // show up 30 s later as a connect error on its missing socket.
            if (xenstored.HasExited)
                throw new InvalidOperationException($"xenstored ({xenstored.StartInfo.FileName}) exited with status {xenstored.ExitCode} before listening");
            try { return await XenStoreClient.ConnectAsync(socket); }
            catch (Exception) when (sw.Elapsed < TimeSpan.FromSeconds(30)) { await Task.Delay(50); }
        }
    }

    private static Process Start(string file, Action<string> onLine, string[] args)
    {
        var psi = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, e) => { if (e.Data != null) onLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data != null) onLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    /// <summary>A built executable: from --bin, else artifacts/bin/*/{release,debug}/name above the bench.</summary>
    private static string Find(string name, string? bin)
    {
        if (bin != null) return Path.Combine(bin, name);
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
        {
            var artifacts = Path.Combine(d.FullName, "artifacts", "bin");
            if (!Directory.Exists(artifacts)) continue;
            foreach (var config in new[] { "release", "debug" })
                foreach (var project in Directory.EnumerateDirectories(artifacts))
                {
                    var candidate = Path.Combine(project, config, name);
                    // The apphost alone is not a build: without its dll it only says "not built yet".
                    if (File.Exists(candidate) && File.Exists(candidate + ".dll") && !project.Contains(".Tests", StringComparison.Ordinal)) return candidate;
                }
        }
        throw new FileNotFoundException($"{name} is not built; build BlkTapCtrl.sln or pass --bin");
    }
}

internal static partial class Signals
{
    [System.Runtime.InteropServices.LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int signal);

    public static void Kill(int pid, int signal) => kill(pid, signal);
}
