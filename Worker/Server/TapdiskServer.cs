using BlkTapCtrl.Worker.Vbd;
using BlkTapCtrl.Worker.Images;
using BlkTapCtrl.Worker.IO;
using BlkTapCtrl.Worker.Lvm;
using BlkTapCtrl.Worker.Logging;
using BlkTapCtrl.Worker.Scheduling;

namespace BlkTapCtrl.Worker.Server;

/// <summary>
/// The worker process's core (reference §3.3): the event loop, the VBDs keyed by cookie, the I/O
/// queues, and the server iteration: retry bound, watchdog, wait, check each VBD, submit queued I/O,
/// kick each VBD. Single-threaded: everything runs on the thread that calls <see cref="Run"/> or
/// <see cref="Iterate"/>.
/// </summary>
public sealed class TapdiskServer : IDisposable
{
    private readonly List<VirtualBlockDevice> _vbds = new();
    private readonly List<IoQueue> _queues = new();
    private IoQueue? _aio;
    private IoQueue? _sync;
    private IoQueue? _uring;
    private IoQueue? _custom;
    private bool _hadVbd;
    private bool _stop;
    private readonly HashSet<ushort> _watchdogDumped = new();

    public TapdiskServer(TapdiskServerOptions? options = null)
    {
        options ??= new TapdiskServerOptions();
        Options = options;
        Clock = options.Clock;
        Log = options.Log;
        DriverFactory = options.DriverFactory;
        Lvm = options.Lvm;
        Loop = new EventLoop(Clock, options.PollMaxMicroseconds);
    }

    public TapdiskServerOptions Options { get; }
    public EventLoop Loop { get; }
    public IClock Clock { get; }
    public WorkerLog Log { get; }
    public IImageDriverFactory DriverFactory { get; }
    public ILvmReactivator Lvm { get; }
    public IReadOnlyList<VirtualBlockDevice> Vbds => _vbds;
    public IReadOnlyList<IoQueue> Queues => _queues;

    /// <summary>Iterations run so far.</summary>
    public long Iterations { get; private set; }

    /// <summary>False once the last VBD went away (or <see cref="Stop"/>): <see cref="Run"/> returns.</summary>
    public bool Running => !_stop && !(_hadVbd && _vbds.Count == 0);

    /// <summary>Extra debug-dump lines (the control channel adds its fds to the wake-up ring index).</summary>
    public Func<IEnumerable<string>>? DebugIndexLines { get; set; }

    public VirtualBlockDevice? FindVbd(ushort cookie)
    {
        foreach (var v in _vbds)
            if (v.Cookie == cookie) return v;
        return null;
    }

    /// <summary>Creates a VBD (PID message, or standalone). Throws if the cookie is taken.</summary>
    public VirtualBlockDevice CreateVbd(ushort cookie, IoBackendKind? backend = null)
    {
        if (FindVbd(cookie) != null)
            throw new InvalidOperationException($"VBD {cookie} already exists");
        var vbd = new VirtualBlockDevice(this, cookie, Options.RequestSlotsPerVbd) { Io = QueueFor(backend ?? Options.Backend) };
        _vbds.Add(vbd);
        _hadVbd = true;
        return vbd;
    }

    internal void RemoveVbd(VirtualBlockDevice vbd)
    {
        _vbds.Remove(vbd);
        _watchdogDumped.Remove(vbd.Cookie);
    }

    /// <summary>The shared queue of a backend kind, created on first use (io_uring ⇒ native AIO ⇒ synchronous when unavailable).</summary>
    public IoQueue QueueFor(IoBackendKind kind)
    {
        if (Options.QueueFactory != null)
        {
            if (_custom == null)
            {
                _custom = Options.QueueFactory(kind, Loop);
                _queues.Add(_custom);
            }
            return _custom;
        }
        if (kind == IoBackendKind.IoUring && _uring == null)
        {
            try
            {
                _uring = new IoUringQueue(Loop, Options.IoQueueCapacity);
                _queues.Add(_uring);
            }
            catch (IOException e)
            {
                Log.Error(Interop.Errno.ENOSYS, "tapdisk_init_queue", $"io_uring unavailable, using native AIO: {e.Message}");
                kind = IoBackendKind.LinuxAio;
            }
        }
        if (kind == IoBackendKind.IoUring) return _uring!;
        if (kind == IoBackendKind.LinuxAio && _aio == null)
        {
            try
            {
                _aio = new LinuxAioQueue(Loop, Options.IoQueueCapacity, Log);
                _queues.Add(_aio);
            }
            catch (IOException e)
            {
                Log.Error(Interop.Errno.ENOSYS, "tapdisk_init_queue", $"native AIO unavailable, using synchronous I/O: {e.Message}");
                kind = IoBackendKind.Synchronous;
            }
        }
        if (kind == IoBackendKind.LinuxAio) return _aio!;
        if (_sync == null)
        {
            _sync = new SynchronousIoQueue(Options.IoQueueCapacity);
            _queues.Add(_sync);
        }
        return _sync;
    }

    /// <summary>Ends <see cref="Run"/> after the current iteration.</summary>
    public void Stop() => _stop = true;

    /// <summary>Iterates until the last VBD closed or <see cref="Stop"/>.</summary>
    public void Run()
    {
        while (Running) Iterate();
    }

    /// <summary>Runs at the end of every iteration (the diagnostics flush the syslog lines the pass queued).</summary>
    public Action? IterationEnded { get; set; }

    /// <summary>One server iteration (reference §3.3).</summary>
    public void Iterate()
    {
        Iterations++;
        long now = Clock.NowMicroseconds;
        foreach (var vbd in _vbds)
        {
            if ((vbd.Flags & VbdFlags.RetryNeeded) != 0)
                Loop.SetMaxTimeout(VirtualBlockDevice.RetryIntervalMicroseconds);
            Watchdog(vbd, now);
        }
        Loop.WaitForEvents();
        for (int i = 0; i < _vbds.Count; i++)
        {
            var vbd = _vbds[i];
            vbd.CheckState();
            if (i < _vbds.Count && _vbds[i] != vbd) i--; // removed by close
        }
        SubmitAll();
        for (int i = 0; i < _vbds.Count; i++) _vbds[i].Kick();
        IterationEnded?.Invoke();
    }

    /// <summary>Hands every queued I/O to its backend, until nothing is queued (synchronous completions refill).</summary>
    public void SubmitAll()
    {
        bool any = true;
        while (any)
        {
            any = false;
            foreach (var q in _queues)
            {
                if (!q.HasQueued) continue;
                q.Submit();
                any = true;
            }
        }
    }

    private void Watchdog(VirtualBlockDevice vbd, long now)
    {
        if (!vbd.HasPendingIo) return;
        long idle = now - vbd.LastProgress;
        if (idle >= VirtualBlockDevice.WatchdogMicroseconds && vbd.IsReady)
        {
            Log.Warn("tapdisk_server_check_vbds",
                $"VBD {vbd.Cookie}: watchdog timeout: pending requests idle for {idle / 1_000_000} seconds");
            if (_watchdogDumped.Add(vbd.Cookie))
            {
                foreach (var line in DebugDump()) Log.Warn("tapdisk_server_debug", line);
                Log.MakePrecious();
            }
        }
        else
        {
            Loop.SetMaxTimeout(Math.Max(0, VirtualBlockDevice.WatchdogMicroseconds - idle));
        }
    }

    /// <summary>The SIGUSR1 / watchdog dump: VBD queues and counters, images, I/O queues, wake-up ring.</summary>
    public IReadOnlyList<string> DebugDump()
    {
        var lines = new List<string>();
        foreach (var vbd in _vbds)
        {
            lines.Add(vbd.DebugSummary());
            if (vbd.Chain != null)
                foreach (var image in vbd.Chain.Images) lines.Add("  " + image.Driver.Describe());
        }
        foreach (var q in _queues)
            lines.Add($"queue {q.Name}: queued {q.Queued} deferred {q.Deferred} in flight {q.InFlight} merged {q.MergedCount} submitted {q.SubmittedCount}");
        lines.AddRange(Loop.Wakeups.Dump(DebugIndexLines?.Invoke() ?? []));
        return lines;
    }

    public void Dispose()
    {
        foreach (var q in _queues) q.Dispose();
        Loop.Dispose();
    }
}
