using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using BlkTapCtrl.Controller.Native;

namespace BlkTapCtrl.Controller.Spawning;

/// <summary>
/// One thread in epoll_wait over every worker's read FIFO (the original's select loop, reference §1.6): a readable
/// FIFO runs its link's handler, which reads what is there without blocking and posts whole records to the main
/// loop. Idle channels cost nothing — no thread per FIFO, no timer. An eventfd wakes the thread to stop.
/// </summary>
public sealed unsafe class FifoPoller : IDisposable
{
    private const int BatchSize = 64;
    private readonly ConcurrentDictionary<int, Action> _handlers = new();
    private readonly int _epoll;
    private readonly int _wake;
    private readonly Thread _thread;
    private volatile bool _disposed;

    public FifoPoller()
    {
        _epoll = Libc.epoll_create1(Libc.EPOLL_CLOEXEC);
        if (_epoll < 0)
            throw new IOException($"epoll_create1: {Libc.ErrorText(Marshal.GetLastPInvokeError())}");
        _wake = Libc.eventfd(0, Libc.EFD_CLOEXEC | Libc.EFD_NONBLOCK);
        if (_wake < 0 || !Control(Libc.EPOLL_CTL_ADD, _wake))
            throw new IOException($"eventfd: {Libc.ErrorText(Marshal.GetLastPInvokeError())}");
        _thread = new Thread(Run) { IsBackground = true, Name = "fifo-poller" };
        _thread.Start();
    }

    /// <summary>Calls <paramref name="onReadable"/> on the poller thread whenever <paramref name="fd"/> has data.</summary>
    public void Add(int fd, Action onReadable)
    {
        _handlers[fd] = onReadable;
        if (!Control(Libc.EPOLL_CTL_ADD, fd))
        {
            _handlers.TryRemove(fd, out _);
            throw new IOException($"epoll_ctl ADD fd {fd}: {Libc.ErrorText(Marshal.GetLastPInvokeError())}");
        }
    }

    /// <summary>Stops watching <paramref name="fd"/> (before it is closed). A handler already running finishes.</summary>
    public void Remove(int fd)
    {
        _handlers.TryRemove(fd, out _);
        Control(Libc.EPOLL_CTL_DEL, fd);
    }

    private bool Control(int op, int fd)
    {
        var ev = new Libc.EpollEvent { Events = Libc.EPOLLIN, Data = (ulong)fd };
        return Libc.epoll_ctl(_epoll, op, fd, &ev) == 0;
    }

    private void Run()
    {
        var events = stackalloc Libc.EpollEvent[BatchSize];
        while (!_disposed)
        {
            int n = Libc.epoll_wait(_epoll, events, BatchSize, -1);
            for (int i = 0; i < n && !_disposed; i++)
            {
                int fd = (int)events[i].Data;
                if (fd == _wake) continue;
                // A handler removed meanwhile is not called; one replaced by a new link on a reused fd number
                // just finds nothing to read.
                if (_handlers.TryGetValue(fd, out var handler))
                    handler();
            }
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        ulong one = 1;
        Libc.write(_wake, (byte*)&one, sizeof(ulong));
        _thread.Join(TimeSpan.FromSeconds(2));
        Libc.close(_wake);
        Libc.close(_epoll);
    }
}
