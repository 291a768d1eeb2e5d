using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using BlkTapCtrl.Controller.Spawning;
using BlkTapCtrl.Protocol.Control;
using BlkTapCtrl.Worker.IO;
using BlkTapCtrl.Worker.Logging;
using BlkTapCtrl.Worker.Server;
using BlkTapCtrl.Worker.Vbd;

namespace BlkTapCtrl.Bench;

/// <summary>
/// <c>blktap-bench worker [--tapdisk PATH] [--starts N] [--requests N] [--dir DIR] [--skip-publish]</c>: the
/// worker's speed targets of issue 5, each printed with its ratio to the target.
/// <list type="number">
/// <item>Start → PID_RSP: tapdisk published as NativeAOT (as deploy/install does; or <c>--tapdisk</c>), spawned
/// exactly as blktapctrl does (its <see cref="ControlFifos"/> and <see cref="TapdiskLauncher"/>: posix_spawn,
/// argv <c>tapdisk -ldaemon &lt;write&gt; &lt;read&gt;</c>), PID sent at once, the time until PID_RSP is read;
/// median and p99 over N starts (target ≤ 20 ms). The JIT build is measured beside it for comparison.</item>
/// <item>Idle RSS: VmRSS of /proc/&lt;pid&gt;/status after OPEN of a raw image and a quiet moment (target ≤ 16 MiB).</item>
/// <item>Allocations per request: the in-process engine (server, VBD, aio driver, Linux AIO backend on a temp
/// file), a frontend that resubmits every answer, <see cref="GC.GetAllocatedBytesForCurrentThread"/> over N
/// requests after a warm-up (target 0 bytes).</item>
/// </list>
/// </summary>
public static partial class WorkerBench
{
    private const double StartTargetMs = 20, RssTargetMiB = 16;

    public static async Task<int> RunAsync(string[] args)
    {
        string? tapdisk = null;
        int starts = 50, requests = 100_000;
        bool publish = true;
        string dir = Path.Combine(Path.GetTempPath(), $"workerbench-{Environment.ProcessId}");
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--tapdisk": tapdisk = args[++i]; break;
                case "--starts": starts = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--requests": requests = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--dir": dir = args[++i]; break;
                case "--skip-publish": publish = false; break;
                default:
                    Console.Error.WriteLine($"worker bench: unknown option {args[i]}");
                    return 22;
            }
        }
        Directory.CreateDirectory(dir);
        try
        {
            if (requests > 0)
                foreach (var backend in new[] { IoBackendKind.LinuxAio, IoBackendKind.IoUring, IoBackendKind.Synchronous })
                    Allocations(dir, requests, backend);
            var binaries = new List<(string Name, string Path)>();
            if (starts == 0) publish = false;
            if (tapdisk != null) binaries.Add(("tapdisk (given)", tapdisk));
            else if (publish) binaries.Add(("tapdisk NativeAOT", PublishAot()));
            string jit = Path.Combine(AppContext.BaseDirectory, "tapdisk");
            if (File.Exists(jit)) binaries.Add(("tapdisk JIT (for comparison)", jit));
            if (!OperatingSystem.IsLinux()) throw new PlatformNotSupportedException("tapdisk runs on Linux");
            if (starts > 0)
                foreach (var (name, path) in binaries)
                    await StartAndRss(name, path, dir, starts);
            return 0;
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); }
            catch (IOException) { }
        }
    }

    // ---------------------------------------------------------------- publish

    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "BlkTapCtrl.sln"))) return d.FullName;
        throw new InvalidOperationException("BlkTapCtrl.sln not found above " + AppContext.BaseDirectory);
    }

    /// <summary>deploy/install's NativeAOT publish of the worker, into artifacts/publish/tapdisk-aot.</summary>
    private static string PublishAot()
    {
        string root = RepoRoot();
        string output = Path.Combine(root, "artifacts", "publish", "tapdisk-aot");
        var sw = Stopwatch.StartNew();
        var psi = new ProcessStartInfo("dotnet")
        {
            ArgumentList =
            {
                "publish", Path.Combine(root, "Worker", "BlkTapCtrl.Worker.csproj"), "-c", "Release", "-nologo", "-v:q",
                "-r", "linux-x64", "-p:PublishAot=true", "-p:StripSymbols=true", "-o", output,
            },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var p = Process.Start(psi)!;
        string outText = p.StandardOutput.ReadToEnd(), errText = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"dotnet publish failed ({p.ExitCode}): {outText}{errText}");
        string exe = Path.Combine(output, "tapdisk");
        Console.WriteLine($"published NativeAOT tapdisk in {sw.Elapsed.TotalSeconds:F0} s: {exe} ({new FileInfo(exe).Length / 1024} KiB)");
        return exe;
    }

    // ---------------------------------------------------------------- start and RSS

    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    private static async Task StartAndRss(string name, string program, string dir, int starts)
    {
        string runDir = Directory.CreateDirectory(Path.Combine(dir, "run")).FullName;
        string logDir = Directory.CreateDirectory(Path.Combine(dir, "log")).FullName;
        string image = Path.Combine(dir, "idle.raw");
        using (var f = File.Create(image)) f.SetLength(64L << 20);
        Environment.SetEnvironmentVariable("TAPDISK_LOG_DIR", logDir); // inherited by posix_spawn, never /var/log/blktap
        var launcher = new TapdiskLauncher(program, 3 << 3, Environment.GetEnvironmentVariable);

        var startMs = new List<double>();
        var rssKiB = new List<long>();
        for (int i = 0; i < starts; i++)
        {
            int minor = 1000 + i;
            using var fifos = ControlFifos.Create(runDir, minor);
            var buf = new byte[ControlMessage.Size];
            long t0 = Stopwatch.GetTimestamp();
            int pid = launcher.Spawn(fifos);
            ControlMessage.Simple(ControlMessageType.Pid, (ushort)minor).WriteTo(buf);
            Send(fifos, buf);
            var reply = Receive(fifos, buf);
            double ms = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            if (reply.Type != ControlMessageType.PidResponse || reply.Pid != pid)
                throw new InvalidOperationException($"{name}: expected PID_RSP({pid}), got {reply.Type} pid {reply.Pid}");
            startMs.Add(ms);

            if (i % 5 == 0) // idle RSS on every fifth worker: OPEN a raw image, let it settle, read VmRSS
            {
                ControlMessage.Open((ushort)minor, DriverType.Aio, image, ControlOpenFlags.None, StorageType.Ext, (uint)minor, 1).WriteTo(buf);
                Send(fifos, buf);
                var open = Receive(fifos, buf);
                if (open.Type != ControlMessageType.OpenResponse) throw new InvalidOperationException($"{name}: OPEN got {open.Type}");
                await Task.Delay(200);
                rssKiB.Add(VmRssKiB(pid));
            }
            ControlMessage.Simple(ControlMessageType.Close, (ushort)minor).WriteTo(buf);
            Send(fifos, buf);
            var close = Receive(fifos, buf);
            if (close.Type != ControlMessageType.CloseResponse) throw new InvalidOperationException($"{name}: CLOSE got {close.Type}");
            int status = Reap(pid);
            if (status != 0) throw new InvalidOperationException($"{name}: worker {pid} exited with wait status {status}");
        }
        startMs.Sort();
        rssKiB.Sort();
        double median = Percentile(startMs, 50), p99 = Percentile(startMs, 99);
        double rss = rssKiB[rssKiB.Count / 2] / 1024.0;
        Console.WriteLine($"{name}: {program}");
        Console.WriteLine($"  start → PID_RSP over {starts} starts: median {median:F2} ms, p99 {p99:F2} ms, min {startMs[0]:F2} ms" +
                          $"  (target ≤ {StartTargetMs} ms: median ratio {median / StartTargetMs:F2}, p99 ratio {p99 / StartTargetMs:F2})");
        Console.WriteLine($"  idle RSS after OPEN (median of {rssKiB.Count}): {rss:F1} MiB, range {rssKiB[0] / 1024.0:F1}–{rssKiB[^1] / 1024.0:F1} MiB" +
                          $"  (target ≤ {RssTargetMiB} MiB: ratio {rss / RssTargetMiB:F2})");
    }

    // As the controller's WorkerLink: a 280-byte record is one atomic write() to the non-blocking FIFO, and the
    // reply is read when the FIFO polls readable (the controller's FifoPoller thread does the same with epoll).
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    private static unsafe void Send(ControlFifos fifos, byte[] record)
    {
        fixed (byte* p = record)
            if (write(fifos.WriteFd, p, record.Length) != record.Length)
                throw new IOException($"write {fifos.WritePath} failed");
    }

    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    private static unsafe ControlMessage Receive(ControlFifos fifos, byte[] record)
    {
        int got = 0;
        long deadline = Environment.TickCount64 + 10_000;
        fixed (byte* p = record)
        {
            while (got < record.Length)
            {
                var pfd = new PollFd { Fd = fifos.ReadFd, Events = 1 /* POLLIN */ };
                int wait = (int)Math.Max(0, deadline - Environment.TickCount64);
                if (poll(&pfd, 1, wait) == 0) throw new TimeoutException($"no reply on {fifos.ReadPath} within 10 s");
                nint n = read(fifos.ReadFd, p + got, record.Length - got);
                if (n > 0) got += (int)n;
            }
        }
        return ControlMessage.Read(record);
    }

    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [System.Runtime.InteropServices.LibraryImport("libc")]
    private static unsafe partial int poll(PollFd* fds, nuint count, int timeoutMs);

    private static double Percentile(List<double> sorted, int p) =>
        sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p / 100.0 * sorted.Count) - 1)];

    private static long VmRssKiB(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
        throw new InvalidOperationException($"no VmRSS for {pid}");
    }

    private static int Reap(int pid)
    {
        int status;
        while (waitpid(pid, out status, 0) < 0)
            if (System.Runtime.InteropServices.Marshal.GetLastPInvokeError() != 4) throw new InvalidOperationException($"waitpid {pid} failed");
        return status;
    }

    [System.Runtime.InteropServices.LibraryImport("libc", SetLastError = true)]
    private static partial int waitpid(int pid, out int status, int options);

    // ---------------------------------------------------------------- allocations per request

    /// <summary>
    /// A guest in a box: keeps <see cref="Depth"/> requests in flight the way a blkif ring does. Answers are
    /// counted; at the kick out it rings a doorbell (an eventfd in the loop, the ring's event channel) and the
    /// doorbell's callback puts as many new requests on the VBD and kicks it in.
    /// </summary>
    private sealed unsafe class RingLikeFrontend : IVbdFrontend, IDisposable
    {
        public const int Depth = 16, RequestSectors = 8;
        public long Answered, Failed, Limit;
        private readonly VirtualBlockDevice _vbd;
        private readonly AlignedBuffer _memory;
        private readonly ulong _sectors;
        private readonly int _doorbell;
        private readonly int _event;
        private long _issued;
        private int _owed;

        public RingLikeFrontend(TapdiskServer server, VirtualBlockDevice vbd, AlignedBuffer memory, ulong sectors)
        {
            _vbd = vbd;
            _memory = memory;
            _sectors = sectors;
            _doorbell = eventfd(0, 0x800 /* EFD_NONBLOCK */);
            if (_doorbell < 0) throw new IOException("eventfd failed");
            _event = server.Loop.Register(Worker.Scheduling.EventMode.Read, _doorbell, 0,
                static (_, _, state) => ((RingLikeFrontend)state!).OnDoorbell(), this);
        }

        /// <summary>Starts a run of <paramref name="count"/> more requests.</summary>
        public void Start(long count)
        {
            Limit = Answered + count;
            _owed = (int)Math.Min(Depth, count);
            ulong one = 1;
            write(_doorbell, &one, sizeof(ulong)); // the guest's first kick: through the loop like every other
        }

        private void OnDoorbell()
        {
            ulong value;
            read(_doorbell, &value, sizeof(ulong));
            if (_owed == 0) return;
            for (; _owed > 0; _owed--) SubmitOne();
            _vbd.ProcessSubmitted();
        }

        private void SubmitOne()
        {
            var r = _vbd.TryRentRequest(this) ?? throw new InvalidOperationException("no free request slot");
            long n = _issued++;
            r.Operation = (n & 1) == 0 ? VbdOperation.Read : VbdOperation.Write;
            r.Sector = (ulong)n * 7919 % (_sectors / RequestSectors) * RequestSectors; // spread over the image
            r.Tag = (ulong)n;
            r.AddSegment(_memory.Pointer + (int)(n % Depth) * RequestSectors * 512, RequestSectors);
            _vbd.Submit(r);
        }

        public void OnRequestCompleted(VbdRequest request)
        {
            Answered++;
            if (!request.Succeeded) Failed++;
            if (_issued < Limit) _owed++;
        }

        public void OnResponsesReady()
        {
            if (_owed == 0) return;
            ulong one = 1;
            write(_doorbell, &one, sizeof(ulong));
        }

        public void OnVbdClosed() { }

        public void Dispose() => close(_doorbell);
    }

    [System.Runtime.InteropServices.LibraryImport("libc")]
    private static partial int eventfd(uint initval, int flags);

    [System.Runtime.InteropServices.LibraryImport("libc")]
    private static unsafe partial nint read(int fd, void* buf, nint count);

    [System.Runtime.InteropServices.LibraryImport("libc")]
    private static unsafe partial nint write(int fd, void* buf, nint count);

    [System.Runtime.InteropServices.LibraryImport("libc")]
    private static partial int close(int fd);

    private static void Allocations(string dir, int requests, IoBackendKind backendKind)
    {
        const ulong sectors = 64UL << 20 >> 9;
        string image = Path.Combine(dir, "engine.raw");
        using (var f = File.Create(image)) f.SetLength((long)sectors * 512);
        var server = new TapdiskServer(new TapdiskServerOptions
        {
            Backend = backendKind,
            Log = new WorkerLog { Sink = static (_, line) => Console.Error.WriteLine(line) },
        });
        using var memory = new AlignedBuffer(RingLikeFrontend.Depth * RingLikeFrontend.RequestSectors * 512);
        try
        {
            var vbd = server.CreateVbd(1);
            int err = vbd.Open(new VbdOpenParameters(image, DriverType.Aio));
            if (err != 0) throw new InvalidOperationException($"open {image}: {err}");
            using var frontend = new RingLikeFrontend(server, vbd, memory, sectors);
            vbd.Attach(frontend);
            string backend = server.Queues.Count > 0 ? server.Queues[0].Name : "?";

            void Drive(long count)
            {
                frontend.Start(count);
                while (frontend.Answered < frontend.Limit) server.Iterate();
            }

            Drive(20_000); // warm-up: JIT, tiered compilation, pools and lists at their steady size
            int gen0 = GC.CollectionCount(0);
            long t0 = Stopwatch.GetTimestamp(); // no Stopwatch object: the measured span allocates nothing of its own
            long before = GC.GetAllocatedBytesForCurrentThread();
            Drive(requests);
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            var elapsed = Stopwatch.GetElapsedTime(t0);
            double perRequest = (double)allocated / requests;
            Console.WriteLine($"engine, {backend} backend, {RingLikeFrontend.RequestSectors * 512 / 1024} KiB read/write mix at QD{RingLikeFrontend.Depth}: " +
                              $"{requests} requests in {elapsed.TotalMilliseconds:F0} ms ({requests / elapsed.TotalSeconds:F0}/s), {frontend.Failed} failed");
            Console.WriteLine($"  allocated {allocated} bytes on the loop thread = {perRequest:F3} bytes/request, gen0 GCs {GC.CollectionCount(0) - gen0}" +
                              $"  (target 0 bytes/request: {(allocated == 0 ? "met" : "NOT met")})");
            vbd.Close();
            while (server.Running) server.Iterate();
        }
        finally
        {
            server.Dispose();
        }
    }
}
