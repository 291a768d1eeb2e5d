using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using BlkTapCtrl.Protocol.Blkif;
using BlkTapCtrl.Protocol.Blkif.SharedMemory;

namespace BlkTapCtrl.Bench;

/// <summary>
/// <c>blktap-bench nbd [--size MiB] [--seconds N] [--dir DIR] [--tapdisk PATH] [--vhd-util PATH] [--image raw|vhd|all]
/// [--cache none|writeback|all] [--skip-ring|--only-ring] [--backend uring|aio|sync]</c>: the same image, the
/// same client (<c>fio --ioengine=nbd</c>), side by side in one run — our <c>tapdisk serve</c> against
/// <c>qemu-nbd</c> and <c>nbdkit file</c> in the same cache mode (ours <c>--cache none</c> against
/// <c>qemu-nbd --cache=none --aio=native</c>; ours <c>--cache writeback</c> against <c>nbdkit file</c> and
/// <c>qemu-nbd</c>'s default), for 1 MiB sequential read/write at QD8 and 4 KiB random read/write at QD32.
/// Without <c>--backend</c> tapdisk runs with its own default.
/// <list type="bullet">
/// <item>raw: one fully written file for every server.</item>
/// <item>vhd: a dynamic VHD made by our <c>vhd-util create</c>, ours on <c>vhd:</c> against <c>qemu-nbd -f vpc</c>
/// in both cache modes; "allocated" = filled by <c>vhd-util fill</c> (every block present, shared by all
/// servers), "sparse" = a freshly created image for every server and job, so writes allocate blocks.</item>
/// <item>ring: the shared-memory blkif ring (a blkfront loop on <see cref="SharedMemoryRingClient"/>) against
/// fio directly on the raw file with O_DIRECT.</item>
/// </list>
/// Prints MiB/s and IOPS per job (with fio's own CPU: near 100 % the client, not the server, is the limit),
/// the ratios, and a summary of every ratio against its target of issue 6, plus issue 4's VHD-vs-raw read
/// target measured through tapdisk itself (sequential 1 MiB reads of allocated data ≥ 0.9× raw).
/// <para>Measured (session 3, 3 s per job, a shared 2-core machine at load 15–40, so single ratios swing
/// ±2×; read the summary of two runs, never one line): raw cache none 2.2–9× qemu-nbd on every job; VHD
/// 2–6× qemu-nbd -f vpc on allocated reads, 6–100× on writes (qemu serialises vpc writes), sparse
/// reads are holes (OFFSET_HOLE replies) where 4K QD32 is bound by fio's own per-request cost (ours
/// 0.7–1.6× qemu-nbd, both near the client's limit; ours spends ~8 µs CPU per request, qemu ~12).
/// Page cache against nbdkit: once every server starts hot and clean (<see cref="WarmPageCache"/>)
/// seq read is 2.2–3.2× (0.9× once under load), rand read 1.6–1.9×; writes swing 0.35–2.7× with the
/// kernel's dirty-page flushing. Backends with --cache writeback: uring and aio read alike (uring does
/// cached reads inline); buffered writes favour uring (seq write 1.97× vs aio's 0.83× nbdkit in the
/// same minute: aio's io_submit copies them synchronously), so uring stays the default for both
/// cache modes (cache none: aio and uring both meet 1.5× qemu-nbd by a wide margin).</para>
/// <para>Session 4, quiet machine, after the loop's adaptive polling (EventLoop/AdaptivePolling): every
/// target met except sparse 4K QD32 reads, 1.22×/1.23× qemu-nbd (target 1.3). Those are OFFSET_HOLE replies:
/// fio is at 99 % CPU against ours, and the client does the same syscalls per request against either server
/// (strace: 1 poll, 3 recvfrom, 1 sendto), so its own cost is the ceiling (~95k IOPS here, which qemu-nbd,
/// polling too, also reaches in some runs). Sparse 1M reads rose from 1.25× to 1.78× with polling.</para>
/// </summary>
public static class NbdBench
{
    private sealed record Job(string Name, string Rw, int BlockSize, int Depth);

    private static readonly Job[] Jobs =
    [
        new("seq-read 1M QD8", "read", 1 << 20, 8),
        new("seq-write 1M QD8", "write", 1 << 20, 8),
        new("rand-read 4K QD32", "randread", 4096, 32),
        new("rand-write 4K QD32", "randwrite", 4096, 32),
    ];

    /// <summary>A job's throughput and the client's CPU (fio's usr+sys, %): near 100 % the client is the limit, not the server.</summary>
    private sealed record Result(double MiBps, double Iops, double ClientCpu = double.NaN);

    /// <summary>Our server's result per (section, job), for the VHD-vs-raw lines of issue 4.</summary>
    private static readonly Dictionary<(string Section, string Job), Result> Ours = [];

    /// <summary>A server under comparison: starts on (socket, image).</summary>
    private sealed record Peer(string Name, Func<string, string, Server> Start);

    /// <summary>One ratio of the summary; <see cref="Target"/> null where the issue names none.</summary>
    private sealed record Ratio(string Section, string Job, string Peer, double Value, double? Target);

    private static readonly List<Ratio> Summary = [];

    private static bool IsWrite(Job job) => job.Rw.Contains("write");

    public static int Run(string[] args)
    {
        int sizeMiB = 1024, seconds = 4;
        string dir = Path.Combine(Path.GetTempPath(), $"nbdbench-{Environment.ProcessId}");
        string? tapdisk = null, vhdUtil = null;
        bool ring = true, nbd = true, raw = true, vhd = true, cacheNone = true, cacheWriteback = true;
        string? backend = null;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--size": sizeMiB = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--seconds": seconds = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--dir": dir = args[++i]; break;
                case "--tapdisk": tapdisk = args[++i]; break;
                case "--vhd-util": vhdUtil = args[++i]; break;
                case "--image":
                    string which = args[++i];
                    if (which is not ("raw" or "vhd" or "all"))
                    {
                        Console.Error.WriteLine($"nbd bench: --image '{which}': expected raw, vhd or all");
                        return 22;
                    }
                    (raw, vhd) = (which != "vhd", which != "raw");
                    break;
                case "--cache":
                    string mode = args[++i];
                    if (mode is not ("none" or "writeback" or "all"))
                    {
                        Console.Error.WriteLine($"nbd bench: --cache '{mode}': expected none, writeback or all");
                        return 22;
                    }
                    (cacheNone, cacheWriteback) = (mode != "writeback", mode != "none");
                    break;
                case "--skip-ring": ring = false; break;
                case "--backend": backend = args[++i]; break;
                case "--only-ring": nbd = false; break;
                default:
                    Console.Error.WriteLine($"nbd bench: unknown option {args[i]}");
                    return 22;
            }
        }
        tapdisk ??= FindBuilt("BlkTapCtrl.Worker", "tapdisk");
        if (vhd && nbd) vhdUtil ??= FindBuilt("BlkTapCtrl.Tools.VhdUtil", "vhd-util");
        string[] backendArgs = backend == null ? [] : ["--backend", backend];
        string Tapdisk(string cache) => $"tapdisk --cache {cache}{(backend == null ? "" : $" --backend {backend}")}";
        Directory.CreateDirectory(dir);
        string image = Path.Combine(dir, "bench.raw");
        try
        {
            Console.WriteLine($"{sizeMiB} MiB images, {seconds} s per job; tapdisk {tapdisk}");
            if ((nbd && raw) || ring)
            {
                CreateAllocatedImage(image, sizeMiB);
                Console.WriteLine($"raw image {image}: fully written");
            }

            var none = new Peer[]
            {
                new(Tapdisk("none"), (s, img) => Server.Start(tapdisk, ["serve", $"aio:{img}", "--nbd", $"unix:{s}", "--cache", "none", .. backendArgs], s)),
                new("qemu-nbd --cache=none --aio=native", (s, img) => Server.Start("qemu-nbd", ["-f", "raw", "--cache=none", "--aio=native", "-t", "-e", "8", "-k", s, img], s)),
            };
            var writeback = new Peer[]
            {
                new(Tapdisk("writeback"), (s, img) => Server.Start(tapdisk, ["serve", $"aio:{img}", "--nbd", $"unix:{s}", "--cache", "writeback", .. backendArgs], s)),
                new("nbdkit file", (s, img) => Server.Start("nbdkit", ["-f", "-U", s, "file", img], s)),
                new("qemu-nbd (writeback)", (s, img) => Server.Start("qemu-nbd", ["-f", "raw", "-t", "-e", "8", "-k", s, img], s)),
            };
            if (nbd && raw)
            {
                if (cacheNone) Compare("raw, cache none", none, dir, seconds, () => image, (_, peer) => peer.StartsWith("qemu") ? 1.5 : null);
                if (cacheWriteback) Compare("raw, page cache", writeback, dir, seconds, () => WarmPageCache(image), (_, peer) => peer == "nbdkit file" ? 1.0 : null);
            }
            if (nbd && vhd) VhdSections(tapdisk, vhdUtil!, backendArgs, sizeMiB, dir, seconds, cacheNone, cacheWriteback);
            if (nbd && raw && vhd) VhdVersusRaw(cacheNone, cacheWriteback);
            if (ring) RingVersusDirect(tapdisk, image, dir, seconds, backendArgs);
            PrintSummary();
            return 0;
        }
        finally
        {
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }

    /// <summary>
    /// Dynamic VHD, ours against <c>qemu-nbd -f vpc</c> in both cache modes, allocated and sparse.
    /// Targets (issue 6): at least 1.3× qemu-nbd on reads and 3× on writes.
    /// </summary>
    private static void VhdSections(string tapdisk, string vhdUtil, string[] backendArgs, int sizeMiB, string dir, int seconds, bool cacheNone, bool cacheWriteback)
    {
        string allocated = Path.Combine(dir, "allocated.vhd");
        VhdUtil(vhdUtil, "create", "-n", allocated, "-s", sizeMiB.ToString(CultureInfo.InvariantCulture));
        VhdUtil(vhdUtil, "fill", "-n", allocated);
        string sparse = Path.Combine(dir, "sparse.vhd");
        string FreshSparse()
        {
            File.Delete(sparse);
            VhdUtil(vhdUtil, "create", "-n", sparse, "-s", sizeMiB.ToString(CultureInfo.InvariantCulture));
            return sparse;
        }
        Console.WriteLine();
        Console.WriteLine($"VHD images: {sizeMiB} MiB dynamic by {vhdUtil} create; allocated = vhd-util fill, sparse = created afresh for every server and job");
        double? Target(Job job, string peer) => IsWrite(job) ? 3.0 : 1.3;
        foreach (var (cache, qemuArgs) in new[] { ("none", new[] { "--cache=none", "--aio=native" }), ("writeback", Array.Empty<string>()) })
        {
            if (!(cache == "none" ? cacheNone : cacheWriteback)) continue;
            var peers = new Peer[]
            {
                new($"tapdisk vhd --cache {cache} {string.Join(' ', backendArgs)}".TrimEnd(),
                    (s, img) => Server.Start(tapdisk, ["serve", $"vhd:{img}", "--nbd", $"unix:{s}", "--cache", cache, .. backendArgs], s)),
                new($"qemu-nbd -f vpc {string.Join(' ', qemuArgs)}".TrimEnd(),
                    (s, img) => Server.Start("qemu-nbd", ["-f", "vpc", .. qemuArgs, "-t", "-e", "8", "-k", s, img], s)),
            };
            Func<string, string> warm = cache == "none" ? static p => p : WarmPageCache;
            Compare($"vhd allocated, cache {cache}", peers, dir, seconds, () => warm(allocated), Target);
            Compare($"vhd sparse, cache {cache}", peers, dir, seconds, () => warm(FreshSparse()), Target);
        }
    }

    /// <summary>
    /// Before each page-cache run every server gets the same start: the whole image in the page cache
    /// and nothing of it dirty. Otherwise the order decides: the O_DIRECT writes of the cache-none runs
    /// drop the file's pages, so the first server of a job read from the disk while the next found what
    /// it pulled in (sessions 1–2 measured exactly that as "seq read 0.88× nbdkit"), and a server writing
    /// while the kernel flushes the previous server's gigabyte of dirty pages is throttled for it.
    /// </summary>
    private static string WarmPageCache(string path)
    {
        var buffer = new byte[1 << 20];
        using var f = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, 1, FileOptions.SequentialScan);
        f.Flush(flushToDisk: true);
        while (f.Read(buffer) > 0) { }
        return path;
    }

    private static void VhdUtil(string vhdUtil, params string[] args)
    {
        var psi = new ProcessStartInfo(vhdUtil) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"vhd-util {string.Join(' ', args)} failed ({p.ExitCode}): {output}");
    }

    /// <summary>
    /// Every job on every peer, the first peer being ours; <paramref name="imageFor"/> is asked before each
    /// server starts (a fresh sparse image, or the same file). Ratios are IOPS (= MiB/s for a fixed block size).
    /// </summary>
    private static void Compare(string title, Peer[] servers, string dir, int seconds, Func<string> imageFor, Func<Job, string, double?> target)
    {
        Console.WriteLine();
        Console.WriteLine($"== {title}: fio --ioengine=nbd over a unix socket");
        var results = new Dictionary<(string, string), Result>();
        foreach (var job in Jobs)
        {
            foreach (var peer in servers)
            {
                string socket = Path.Combine(dir, "s.sock");
                string image = imageFor();
                using var server = peer.Start(socket, image);
                var r = Fio(job, ["--ioengine=nbd", $"--uri=nbd+unix:///?socket={socket}"], seconds);
                results[(job.Name, peer.Name)] = r;
                Console.WriteLine($"  {job.Name,-20} {peer.Name,-40} {r.MiBps,9:F1} MiB/s {r.Iops,10:F0} IOPS  (fio CPU {r.ClientCpu,3:F0} %)");
            }
            var ours = results[(job.Name, servers[0].Name)];
            Ours[(title, job.Name)] = ours;
            foreach (var peer in servers.Skip(1))
            {
                double ratio = ours.Iops / Math.Max(1, results[(job.Name, peer.Name)].Iops);
                double? goal = target(job, peer.Name);
                Summary.Add(new Ratio(title, job.Name, peer.Name, ratio, goal));
                Console.WriteLine($"  {job.Name,-20} ratio ours / {peer.Name}: {ratio:F2}x{(goal is { } g ? $" (target {g:F2}x: {(ratio >= g ? "met" : "NOT met")})" : "")}");
            }
        }
    }

    /// <summary>
    /// Issue 4's read target through the worker's own datapath: the same server on the filled dynamic VHD
    /// and on the raw file (both fully written, same cache mode, same warm-up): sequential 1 MiB reads of
    /// allocated data ≥ 0.9× raw. With --cache none (tapdisk's default, O_DIRECT) the page cache's folio
    /// layout (see VhdBench) is out of the picture. First writes are not compared here: the sparse VHD's
    /// are writes into new file blocks while raw's overwrite a written file; VhdBench compares like with like.
    /// </summary>
    private static void VhdVersusRaw(bool cacheNone, bool cacheWriteback)
    {
        foreach (var (rawSection, cache) in new[] { ("raw, cache none", "none"), ("raw, page cache", "writeback") })
        {
            if (!(cache == "none" ? cacheNone : cacheWriteback)) continue;
            foreach (var job in Jobs.Where(j => j.Rw == "read")) // issue 4 names sequential 1 MiB I/O
            {
                if (!Ours.TryGetValue((rawSection, job.Name), out var raw)
                    || !Ours.TryGetValue(($"vhd allocated, cache {cache}", job.Name), out var vhd)) continue;
                Summary.Add(new Ratio($"issue 4: tapdisk vhd/raw, {cache}", job.Name, "raw (vhd: allocated)", vhd.Iops / Math.Max(1, raw.Iops), 0.9));
            }
        }
    }

    private static void PrintSummary()
    {
        if (Summary.Count == 0) return;
        Console.WriteLine();
        Console.WriteLine("== summary: ours / peer (IOPS ratio), target of issue 6 (issue 4's for tapdisk vhd/raw)");
        foreach (var r in Summary)
            Console.WriteLine($"  {r.Section,-28} {r.Job,-20} vs {r.Peer,-36} {r.Value,6:F2}x  {(r.Target is { } g ? $"target {g:F2}x {(r.Value >= g ? "met" : "NOT met")}" : "(no target)")}");
    }

    private static void RingVersusDirect(string tapdisk, string image, string dir, int seconds, string[] backendArgs)
    {
        Console.WriteLine();
        Console.WriteLine("== shared-memory blkif ring (tapdisk --cache none, blkfront loop) vs fio on the file with O_DIRECT (libaio)");
        foreach (var job in Jobs)
        {
            var direct = Fio(job, ["--ioengine=libaio", "--direct=1", $"--filename={image}"], seconds);
            string socket = Path.Combine(dir, "ring.sock");
            Result ours;
            using (Server.Start(tapdisk, ["serve", $"aio:{image}", "--ring", $"unix:{socket}", "--cache", "none", .. backendArgs], socket))
                ours = RingLoop(socket, job, seconds);
            double ratio = ours.Iops / Math.Max(1, direct.Iops);
            Summary.Add(new Ratio("ring, cache none", job.Name, "fio O_DIRECT on the file", ratio, 0.85));
            Console.WriteLine($"  {job.Name,-20} ring {ours.MiBps,9:F1} MiB/s {ours.Iops,10:F0} IOPS | fio direct {direct.MiBps,9:F1} MiB/s {direct.Iops,10:F0} IOPS | ratio {ratio:F2}x");
        }
    }

    /// <summary>
    /// Keeps the ring as full as the job's depth allows (a 1 MiB block is several 44 KiB ring requests:
    /// 11 pages per slot), measuring completed bytes over the run.
    /// </summary>
    private static Result RingLoop(string socket, Job job, int seconds)
    {
        using var c = new SharedMemoryRingClient(socket);
        int sectorsPerRequest = Math.Min(job.BlockSize / 512, BlkifLayout.MaxSegments * BlkifLayout.SectorsPerPage);
        int requestsPerBlock = (job.BlockSize / 512 + sectorsPerRequest - 1) / sectorsPerRequest;
        int maxInFlight = Math.Min(BlkifLayout.RingSlots, job.Depth * requestsPerBlock);
        bool write = job.Rw.Contains("write");
        bool random = job.Rw.StartsWith("rand");
        ulong blocks = c.Sectors * 512 / (ulong)job.BlockSize;
        var rng = new Random(1);
        ulong nextBlock = 0;
        int part = 0;
        long bytes = 0, completions = 0;
        var op = write ? BlkifOperation.Write : BlkifOperation.Read;
        var responses = new BlkifResponse[32];
        var sizes = new int[BlkifLayout.RingSlots];
        var sw = Stopwatch.StartNew();
        int inFlight = 0;
        ulong blockStart = 0;
        while (sw.Elapsed.TotalSeconds < seconds)
        {
            while (inFlight < maxInFlight && c.TryRentId(out int id))
            {
                if (part == 0)
                {
                    ulong block = random ? (ulong)rng.NextInt64((long)blocks) : nextBlock++ % blocks;
                    blockStart = block * (ulong)job.BlockSize / 512;
                }
                int sectors = Math.Min(sectorsPerRequest, job.BlockSize / 512 - part * sectorsPerRequest);
                c.Queue(SharedMemoryRingClient.MakeRequest(op, id, blockStart + (ulong)(part * sectorsPerRequest), sectors));
                sizes[id] = sectors;
                part = (part + 1) % requestsPerBlock;
                inFlight++;
            }
            c.Push();
            int n = c.Collect(responses, 5000);
            if (n == 0) throw new TimeoutException("the ring stopped answering");
            for (int i = 0; i < n; i++)
            {
                if (responses[i].Status != BlkifStatus.Okay) throw new IOException($"ring request {responses[i].Id} failed");
                c.ReturnId((int)responses[i].Id);
                bytes += sizes[responses[i].Id] * 512L;
                completions++;
            }
            inFlight -= n;
        }
        double elapsed = sw.Elapsed.TotalSeconds;
        return new Result(bytes / elapsed / (1 << 20), bytes / elapsed / job.BlockSize);
    }

    private static Result Fio(Job job, string[] target, int seconds)
    {
        var args = new List<string>
        {
            "--name=bench", $"--rw={job.Rw}", $"--bs={job.BlockSize}", $"--iodepth={job.Depth}", $"--runtime={seconds}",
            "--time_based", "--ramp_time=1", "--output-format=json", "--randrepeat=0", "--norandommap",
        };
        args.AddRange(target);
        var psi = new ProcessStartInfo("fio") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd();
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"fio failed ({p.ExitCode}): {err}");
        using var json = JsonDocument.Parse(output[output.IndexOf('{')..]);
        var jobJson = json.RootElement.GetProperty("jobs")[0];
        var side = jobJson.GetProperty(job.Rw.Contains("write") ? "write" : "read");
        double bwKiB = side.GetProperty("bw").GetDouble();
        double cpu = jobJson.GetProperty("usr_cpu").GetDouble() + jobJson.GetProperty("sys_cpu").GetDouble();
        return new Result(bwKiB / 1024, side.GetProperty("iops").GetDouble(), cpu);
    }

    private static void CreateAllocatedImage(string path, int sizeMiB)
    {
        // Real data on every block (not fallocate's unwritten extents, which read as zeroes without I/O).
        var buffer = new byte[1 << 20];
        new Random(7).NextBytes(buffer);
        using var f = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        for (int i = 0; i < sizeMiB; i++) f.Write(buffer);
        f.Flush(true);
    }

    /// <summary>An executable of ours under artifacts/bin/&lt;project&gt;/(release|debug)/.</summary>
    private static string FindBuilt(string project, string exe)
    {
        string baseDir = AppContext.BaseDirectory;
        foreach (var config in new[] { "release", "debug" })
        {
            string candidate = Path.GetFullPath(Path.Combine(baseDir, "..", "..", project, config, exe));
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException($"{exe} is not built; build {project} or pass --{exe} PATH");
    }

    /// <summary>A server process on a unix socket; waits for the socket, killed (SIGTERM, then KILL) on dispose.</summary>
    private sealed class Server : IDisposable
    {
        private readonly Process _process;
        private readonly string _socket;

        private Server(Process process, string socket) { _process = process; _socket = socket; }

        public static Server Start(string exe, string[] args, string socket)
        {
            if (File.Exists(socket)) File.Delete(socket);
            var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in args) psi.ArgumentList.Add(a);
            var p = Process.Start(psi)!;
            p.OutputDataReceived += (_, _) => { };
            p.ErrorDataReceived += (_, _) => { };
            p.BeginOutputReadLine();
            p.BeginErrorReadLine();
            var deadline = DateTime.UtcNow.AddSeconds(20);
            // Ready means accepting: the socket file appears at bind(), a moment before listen() on a busy machine.
            while (!Accepts(socket))
            {
                if (p.HasExited || DateTime.UtcNow > deadline)
                    throw new InvalidOperationException($"{exe} {string.Join(' ', args)} did not listen on {socket}");
                Thread.Sleep(20);
            }
            return new Server(p, socket);
        }

        private static bool Accepts(string socket)
        {
            if (!File.Exists(socket)) return false;
            using var probe = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
            try
            {
                probe.Connect(new System.Net.Sockets.UnixDomainSocketEndPoint(socket));
                return true;
            }
            catch (System.Net.Sockets.SocketException)
            {
                return false;
            }
        }

        public void Dispose()
        {
            if (!_process.HasExited)
            {
                Process.Start("kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)])!.WaitForExit();
                if (!_process.WaitForExit(10_000)) _process.Kill(true);
            }
            _process.Dispose();
            try { File.Delete(_socket); } catch (IOException) { }
        }
    }
}
