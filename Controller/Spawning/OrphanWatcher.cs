using System.Runtime.InteropServices;
using BlkTapCtrl.Controller.Native;

namespace BlkTapCtrl.Controller.Spawning;

/// <summary>
/// Notices the exit of workers that are not our children: those an earlier controller instance spawned and
/// this one took back after a restart. waitpid cannot see them, so each gets a pidfd (readable once the
/// process has exited) and one thread waits in poll(2) on all of them plus an eventfd that wakes it when the
/// set changes. Their exit status is unknown (their parent is gone), so exits are reported without one.
/// </summary>
internal sealed unsafe class OrphanWatcher : IDisposable
{
    private readonly Dictionary<int, int> _pidfds = []; // pid → pidfd
    private readonly object _lock = new();
    private readonly Action<int> _onExit;
    private readonly int _wake;
    private Thread? _thread;
    private volatile bool _disposed;

    public OrphanWatcher(Action<int> onExit)
    {
        _onExit = onExit;
        _wake = Libc.eventfd(0, Libc.EFD_CLOEXEC | Libc.EFD_NONBLOCK);
        if (_wake < 0)
            throw new IOException($"eventfd: {Libc.ErrorText(Marshal.GetLastPInvokeError())}");
    }

    public int Count { get { lock (_lock) return _pidfds.Count; } }

    public IReadOnlyList<int> Pids { get { lock (_lock) return _pidfds.Keys.ToList(); } }

    public bool Contains(int pid) { lock (_lock) return _pidfds.ContainsKey(pid); }

    /// <summary>Starts watching <paramref name="pid"/>; false when it no longer exists (or pidfds are unsupported).</summary>
    public bool Watch(int pid)
    {
        int fd = Libc.pidfd_open(pid);
        if (fd < 0) return false;
        lock (_lock)
        {
            if (_disposed || !_pidfds.TryAdd(pid, fd))
            {
                Libc.close(fd);
                return !_disposed;
            }
            _thread ??= StartThread();
        }
        Wake();
        return true;
    }

    private Thread StartThread()
    {
        var thread = new Thread(Run) { IsBackground = true, Name = "orphan-watcher" };
        thread.Start();
        return thread;
    }

    private void Wake()
    {
        ulong one = 1;
        Libc.write(_wake, (byte*)&one, sizeof(ulong));
    }

    private void Run()
    {
        while (!_disposed)
        {
            KeyValuePair<int, int>[] watched;
            lock (_lock) watched = _pidfds.ToArray();
            var fds = new Libc.PollFd[watched.Length + 1];
            fds[0] = new Libc.PollFd { Fd = _wake, Events = Libc.POLLIN };
            for (int i = 0; i < watched.Length; i++)
                fds[i + 1] = new Libc.PollFd { Fd = watched[i].Value, Events = Libc.POLLIN };
            int ready;
            fixed (Libc.PollFd* p = fds)
                ready = Libc.poll(p, (nuint)fds.Length, -1);
            if (ready < 0) continue; // EINTR
            if (fds[0].Revents != 0)
            {
                ulong drained;
                Libc.read(_wake, (byte*)&drained, sizeof(ulong));
            }
            for (int i = 0; i < watched.Length; i++)
            {
                if (fds[i + 1].Revents == 0) continue;
                var (pid, fd) = (watched[i].Key, watched[i].Value);
                lock (_lock)
                {
                    if (!_pidfds.Remove(pid)) continue;
                }
                Libc.close(fd);
                _onExit(pid);
            }
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
        }
        Wake();
        _thread?.Join(TimeSpan.FromSeconds(2));
        lock (_lock)
        {
            foreach (int fd in _pidfds.Values) Libc.close(fd);
            _pidfds.Clear();
        }
        Libc.close(_wake);
    }
}
