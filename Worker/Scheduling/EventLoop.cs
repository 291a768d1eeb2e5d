using BlkTapCtrl.Worker.Interop;

namespace BlkTapCtrl.Worker.Scheduling;

/// <summary>
/// The worker's single-threaded scheduler (reference §3.2) on epoll. Every callback, every frontend
/// and every VBD runs on the thread that calls <see cref="WaitForEvents"/>; nothing here is thread-safe.
/// <list type="bullet">
/// <item>check/run split (CA-34846): all ready modes are recorded first, then callbacks run, so a
/// callback's side effects cannot hide another event's readiness from this pass.</item>
/// <item>unregister only marks an event dead (CA-34846 "no restart flag"): a dead event is not called
/// again in this pass and is freed after the outermost pass.</item>
/// <item>nested <see cref="WaitForEvents"/> from a callback first runs events still pending from the
/// outer pass and returns if any ran (CA-34846 recursive loop).</item>
/// <item>timeouts are checked on every wake-up, also when nothing was ready (fix of §6.4), and
/// masked events are never dispatched (the other half of §6.4).</item>
/// <item>only fds of registered events are polled (CA-34846 scheduler glitch: never fd 0 by accident).</item>
/// </list>
/// </summary>
public sealed unsafe class EventLoop : IDisposable
{
    public const long DefaultMaxTimeoutMicroseconds = 600_000_000;
    private const int MaxReadyPerWait = 64;

    private readonly List<LoopEvent> _events = new();
    private readonly Dictionary<int, uint> _registered = new();
    private readonly Dictionary<int, uint> _wanted = new();
    private readonly Dictionary<int, EventMode> _ready = new();
    private readonly List<int> _scratchFds = new();
    private readonly LibC.EpollEvent* _readyEvents;
    private readonly int _epfd;
    private int _nextId = 1;
    private int _depth;
    private long _maxTimeout = DefaultMaxTimeoutMicroseconds;
    private bool _disposed;

    public EventLoop(IClock? clock = null, long pollMaxMicroseconds = AdaptivePolling.DefaultMaxMicroseconds)
    {
        Clock = clock ?? MonotonicClock.Instance;
        Polling = new AdaptivePolling(Clock.IsVirtual ? 0 : pollMaxMicroseconds);
        _epfd = LibC.epoll_create1(LibC.EPOLL_CLOEXEC);
        if (_epfd < 0)
            throw new IOException($"epoll_create1 failed: errno {LibC.LastErrno}");
        _readyEvents = (LibC.EpollEvent*)System.Runtime.InteropServices.NativeMemory.Alloc(
            (nuint)(MaxReadyPerWait * sizeof(LibC.EpollEvent)));
    }

    public IClock Clock { get; }

    /// <summary>The spin-before-sleep window of the waits (off under a virtual clock).</summary>
    public AdaptivePolling Polling { get; }

    /// <summary>Waits whose event was caught while spinning, and waits that went to sleep (what the polling tests check).</summary>
    public long PolledWakeups { get; private set; }
    public long BlockedWaits { get; private set; }

    /// <summary>CA-27472 ring of the last 128 wake-ups.</summary>
    public WakeupRing Wakeups { get; } = new();

    /// <summary>The fds handed to epoll for the last wait (for the CA-34846 glitch test and debug dumps).</summary>
    public IReadOnlyCollection<int> PolledFds => _registered.Keys;

    /// <summary>Registered, live events.</summary>
    public int EventCount { get { int n = 0; foreach (var e in _events) if (!e.Dead) n++; return n; } }

    /// <summary>
    /// Registers an event. <paramref name="mode"/> needs at least one mode; fd modes need an fd ≥ 0;
    /// a TIMEOUT fires <paramref name="timeoutMicroseconds"/> after registration and after each firing.
    /// Returns the event id (never 0).
    /// </summary>
    public int Register(EventMode mode, int fd, long timeoutMicroseconds, EventCallback callback, object? state = null)
    {
        ArgumentNullException.ThrowIfNull(callback);
        if ((mode & (EventMode.Read | EventMode.Write | EventMode.Except | EventMode.Timeout)) == 0 || (int)mode > 15)
            throw new ArgumentException($"event mode {mode} must contain READ, WRITE, EXCEPT or TIMEOUT", nameof(mode));
        var ev = new LoopEvent
        {
            Id = _nextId, Mode = mode, Fd = fd, TimeoutMicroseconds = Math.Max(0, timeoutMicroseconds),
            Callback = callback, State = state,
        };
        if (ev.WantsFd && fd < 0)
            throw new ArgumentException($"event mode {mode} needs an fd, got {fd}", nameof(fd));
        ev.Deadline = Clock.NowMicroseconds + ev.TimeoutMicroseconds;
        _nextId = _nextId == int.MaxValue ? 1 : _nextId + 1;
        _events.Add(ev);
        return ev.Id;
    }

    /// <summary>Marks the event dead; safe inside callbacks. Id 0 or an unknown id is a no-op.</summary>
    public void Unregister(int id)
    {
        var ev = Find(id);
        if (ev != null)
        {
            ev.Dead = true;
            ev.Pending = EventMode.None;
        }
    }

    /// <summary>A masked event is neither polled nor dispatched; its pending modes are dropped.</summary>
    public void Mask(int id, bool masked)
    {
        var ev = Find(id);
        if (ev == null) return;
        ev.Masked = masked;
        if (masked) ev.Pending = EventMode.None;
    }

    /// <summary>Restarts a TIMEOUT event's countdown from now.</summary>
    public void ResetTimeout(int id)
    {
        var ev = Find(id);
        if (ev != null) ev.Deadline = Clock.NowMicroseconds + ev.TimeoutMicroseconds;
    }

    /// <summary>Lowers the wait bound of the next wait only (reset to 600 s after each wake-up).</summary>
    public void SetMaxTimeout(long microseconds) => _maxTimeout = Math.Min(_maxTimeout, Math.Max(0, microseconds));

    /// <summary>One pass: wait, check, run, collect. Returns the number of callbacks run.</summary>
    public int WaitForEvents()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _depth++;
        try
        {
            if (_depth > 1)
            {
                int ran = RunPending();
                if (ran > 0) return ran;
            }
            long timeout = Prepare();
            int n = Wait(timeout);
            if (n < 0)
                return 0;
            Check(n);
            _maxTimeout = DefaultMaxTimeoutMicroseconds;
            return RunPending();
        }
        finally
        {
            _depth--;
            if (_depth == 0) CollectDead();
        }
    }

    private long Prepare()
    {
        long now = Clock.NowMicroseconds;
        long timeout = Math.Min(_maxTimeout, DefaultMaxTimeoutMicroseconds);
        _wanted.Clear();
        foreach (var ev in _events)
        {
            if (ev.Dead || ev.Masked) continue;
            if (ev.WantsFd)
            {
                _wanted.TryGetValue(ev.Fd, out uint bits);
                if ((ev.Mode & EventMode.Read) != 0) bits |= LibC.EPOLLIN;
                if ((ev.Mode & EventMode.Write) != 0) bits |= LibC.EPOLLOUT;
                if ((ev.Mode & EventMode.Except) != 0) bits |= LibC.EPOLLPRI;
                _wanted[ev.Fd] = bits;
            }
            if ((ev.Mode & EventMode.Timeout) != 0)
                timeout = Math.Min(timeout, Math.Max(0, ev.Deadline - now));
        }
        SyncEpoll();
        return timeout;
    }

    private void SyncEpoll()
    {
        _scratchFds.Clear();
        foreach (var fd in _registered.Keys)
            if (!_wanted.ContainsKey(fd)) _scratchFds.Add(fd);
        foreach (int fd in _scratchFds)
        {
            LibC.epoll_ctl(_epfd, LibC.EPOLL_CTL_DEL, fd, null);
            _registered.Remove(fd);
        }
        foreach (var (fd, bits) in _wanted)
        {
            bool known = _registered.TryGetValue(fd, out uint current);
            if (known && current == bits) continue;
            var e = new LibC.EpollEvent { Events = bits, Data = (ulong)fd };
            int rc = LibC.epoll_ctl(_epfd, known ? LibC.EPOLL_CTL_MOD : LibC.EPOLL_CTL_ADD, fd, &e);
            if (rc < 0 && !known && LibC.LastErrno == Errno.EEXIST)
                rc = LibC.epoll_ctl(_epfd, LibC.EPOLL_CTL_MOD, fd, &e);
            if (rc < 0)
            {
                // A closed or unpollable fd (e.g. a regular file): report it as ready for everything it
                // asked for, the way select does, so its owner sees the error instead of hanging.
                _registered.Remove(fd);
                continue;
            }
            _registered[fd] = bits;
        }
    }

    private int Wait(long timeoutMicroseconds)
    {
        int ms = (int)Math.Min(int.MaxValue, (timeoutMicroseconds + 999) / 1000);
        int n;
        if (Clock.IsVirtual)
        {
            n = LibC.epoll_wait(_epfd, _readyEvents, MaxReadyPerWait, 0);
            if (n == 0) Clock.Advance(timeoutMicroseconds);
        }
        else
        {
            n = PollThenWait(timeoutMicroseconds, ms);
        }
        if (n < 0)
        {
            if (LibC.LastErrno != Errno.EINTR) return -1;
            n = 0;
        }
        ulong mask = 0;
        for (int i = 0; i < n; i++) mask |= WakeupRing.MaskOf((int)_readyEvents[i].Data);
        Wakeups.Record(Clock.NowMicroseconds, mask);
        return n;
    }

    /// <summary>Spins on a non-blocking epoll_wait for the adaptive window (never past the timeout), then blocks.</summary>
    private int PollThenWait(long timeoutMicroseconds, int timeoutMs)
    {
        long window = Math.Min(Polling.WindowMicroseconds, timeoutMicroseconds);
        long start = window > 0 || Polling.MaxMicroseconds > 0 ? Clock.NowMicroseconds : 0;
        if (window > 0)
        {
            long until = start + window;
            do
            {
                int ready = LibC.epoll_wait(_epfd, _readyEvents, MaxReadyPerWait, 0);
                if (ready != 0)
                {
                    if (ready > 0) { PolledWakeups++; Polling.Update(Clock.NowMicroseconds - start, foundWhilePolling: true); }
                    return ready;
                }
            }
            while (Clock.NowMicroseconds < until);
        }
        if (timeoutMs == 0) return LibC.epoll_wait(_epfd, _readyEvents, MaxReadyPerWait, 0);
        BlockedWaits++;
        int n = LibC.epoll_wait(_epfd, _readyEvents, MaxReadyPerWait, timeoutMs);
        if (Polling.MaxMicroseconds > 0)
            Polling.Update(Clock.NowMicroseconds - start, foundWhilePolling: false);
        return n;
    }

    private void Check(int n)
    {
        _ready.Clear();
        for (int i = 0; i < n; i++)
        {
            uint bits = _readyEvents[i].Events;
            var modes = EventMode.None;
            if ((bits & (LibC.EPOLLIN | LibC.EPOLLHUP | LibC.EPOLLERR)) != 0) modes |= EventMode.Read;
            if ((bits & (LibC.EPOLLOUT | LibC.EPOLLERR)) != 0) modes |= EventMode.Write;
            if ((bits & (LibC.EPOLLPRI | LibC.EPOLLERR)) != 0) modes |= EventMode.Except;
            _ready[(int)_readyEvents[i].Data] = modes;
        }
        long now = Clock.NowMicroseconds;
        foreach (var ev in _events)
        {
            if (ev.Dead || ev.Masked) continue;
            if (ev.WantsFd && _ready.TryGetValue(ev.Fd, out var ready))
            {
                var mine = ready & ev.Mode;
                if (mine != 0)
                {
                    ev.Pending |= mine;
                    // A fd shared by two events counts once, as with select's cleared bits.
                    _ready[ev.Fd] = ready & ~mine;
                }
            }
            if (ev.Pending == 0 && (ev.Mode & EventMode.Timeout) != 0 && ev.Deadline <= now)
                ev.Pending = EventMode.Timeout;
        }
    }

    private int RunPending()
    {
        int ran = 0;
        // Index loop: callbacks may register events (appended, not pending) but nothing is removed
        // before the outermost pass ends.
        for (int i = 0; i < _events.Count; i++)
        {
            var ev = _events[i];
            if (ev.Dead || ev.Masked || ev.Pending == 0) continue;
            var modes = ev.Pending;
            ev.Pending = EventMode.None;
            if ((ev.Mode & EventMode.Timeout) != 0)
                ev.Deadline = Clock.NowMicroseconds + ev.TimeoutMicroseconds;
            ran++;
            ev.Callback(ev.Id, modes, ev.State);
        }
        return ran;
    }

    private void CollectDead() => _events.RemoveAll(static e => e.Dead);

    private LoopEvent? Find(int id)
    {
        if (id == 0) return null;
        foreach (var ev in _events)
            if (ev.Id == id && !ev.Dead) return ev;
        return null;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        LibC.close(_epfd);
        System.Runtime.InteropServices.NativeMemory.Free(_readyEvents);
    }
}
