using System.Runtime.InteropServices;
using BlkTapCtrl.Controller.Native;
using BlkTapCtrl.Protocol.Control;

namespace BlkTapCtrl.Controller.Spawning;

/// <summary>
/// One running worker as the supervisor sees it: its pid and FIFO pair, and the cookies of the channels it
/// serves (one, or several in shared mode). Messages read from it are handed to <c>onMessage</c> with the
/// link, so replies are matched by cookie <b>and</b> receiving FIFO (reference §2).
/// </summary>
public sealed class WorkerLink : IDisposable
{
    /// <summary>The supervisor's limit for a message in either direction (reference §1.6).</summary>
    public static readonly TimeSpan MessageTimeout = TimeSpan.FromSeconds(2);

    private readonly ControlFifos _fifos;
    private readonly byte[] _sendBuffer = new byte[ControlMessage.Size];
    private readonly byte[] _record = new byte[ControlMessage.Size];
    private readonly Lock _gate = new();
    private int _filled;
    private long _partialSince;
    private Timer? _partialTimer;
    private FifoPoller? _poller;
    private Action<WorkerLink, ControlMessage>? _onMessage;
    private Action<WorkerLink, string>? _onReadFailure;
    private bool _disposed;

    public WorkerLink(ControlFifos fifos, int pid, int minor)
    {
        _fifos = fifos;
        Pid = pid;
        Minor = minor;
    }

    public int Pid { get; }
    /// <summary>The minor whose FIFOs this link uses (the first channel's, in shared mode).</summary>
    public int Minor { get; }
    public string WriteFifo => _fifos.WritePath;
    public string ReadFifo => _fifos.ReadPath;

    /// <summary>Cookies of the channels using this worker.</summary>
    public HashSet<ushort> Cookies { get; } = [];

    /// <summary>Set once the process has exited (or was given up on); sends then fail.</summary>
    public bool Exited { get; set; }

    public bool IsDisposed => _disposed;

    /// <summary>
    /// Starts reading 280-byte records as <paramref name="poller"/> reports the FIFO readable, until the link is
    /// disposed. Whole records go to <paramref name="onMessage"/> in order (on the poller's thread: post, do not
    /// work there). A record begun but not finished within the 2 s limit is a read failure, after which the link
    /// reads no more.
    /// </summary>
    public void Start(FifoPoller poller, Action<WorkerLink, ControlMessage> onMessage, Action<WorkerLink, string> onReadFailure)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _poller = poller;
            _onMessage = onMessage;
            _onReadFailure = onReadFailure;
            poller.Add(_fifos.ReadFd, OnReadable);
        }
        OnReadable(); // anything already waiting
    }

    private unsafe void OnReadable()
    {
        lock (_gate)
        {
            while (!_disposed && _onMessage != null)
            {
                nint n;
                fixed (byte* p = _record)
                    n = Libc.read(_fifos.ReadFd, p + _filled, ControlMessage.Size - _filled);
                if (n < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == Libc.EINTR) continue;
                    if (errno != Libc.EAGAIN) FailLocked("reading message: " + Libc.ErrorText(errno));
                    else if (_filled > 0) ArmPartialDeadlineLocked();
                    return;
                }
                if (n == 0) { FailLocked("control FIFO closed"); return; } // cannot happen on an O_RDWR FIFO
                _filled += (int)n;
                if (_filled < ControlMessage.Size) continue;
                _filled = 0;
                ControlMessage message;
                try
                {
                    message = ControlMessage.Read(_record);
                }
                catch (ControlProtocolException e)
                {
                    _onReadFailure?.Invoke(this, "reading message: " + e.Message);
                    continue;
                }
                _onMessage(this, message);
            }
        }
    }

    private void ArmPartialDeadlineLocked()
    {
        long since = Environment.TickCount64;
        _partialSince = since;
        _partialTimer ??= new Timer(static s => ((WorkerLink)s!).OnPartialDeadline(), this, Timeout.Infinite, Timeout.Infinite);
        _partialTimer.Change(MessageTimeout, Timeout.InfiniteTimeSpan);
    }

    private void OnPartialDeadline()
    {
        lock (_gate)
        {
            if (_disposed || _filled == 0 || Environment.TickCount64 - _partialSince < (long)MessageTimeout.TotalMilliseconds - 50)
                return;
            FailLocked($"reading message: timed out after {_filled} of {ControlMessage.Size} bytes");
        }
    }

    private void FailLocked(string error)
    {
        var onFailure = _onReadFailure;
        _onMessage = null; // read no more
        _poller?.Remove(_fifos.ReadFd);
        onFailure?.Invoke(this, error);
    }

    /// <summary>
    /// Sends one record within 2 s. A FIFO write of 280 bytes is atomic (below PIPE_BUF): it is written whole
    /// at once, or not at all while the worker has left the pipe full — then the send waits for room, never
    /// leaving half a record behind. Throws <see cref="IOException"/> on failure (−EIO in the original).
    /// </summary>
    public Task SendAsync(ControlMessage message)
    {
        if (_disposed || Exited)
            throw new IOException("tapdisk is gone");
        message.WriteTo(_sendBuffer);
        return TryWrite() ? Task.CompletedTask : SendWhenRoomAsync();
    }

    private unsafe bool TryWrite()
    {
        while (true)
        {
            nint n;
            fixed (byte* p = _sendBuffer)
                n = Libc.write(_fifos.WriteFd, p, ControlMessage.Size);
            if (n == ControlMessage.Size) return true;
            int errno = Marshal.GetLastPInvokeError();
            if (n < 0 && errno == Libc.EINTR) continue;
            if (n < 0 && errno == Libc.EAGAIN) return false;
            throw new IOException(n < 0 ? Libc.ErrorText(errno) : $"short write of {n} bytes");
        }
    }

    /// <summary>The rare slow path (the worker is not reading): wait for room off the main loop, at most 2 s.</summary>
    private async Task SendWhenRoomAsync()
    {
        long deadline = Environment.TickCount64 + (long)MessageTimeout.TotalMilliseconds;
        while (true)
        {
            long left = deadline - Environment.TickCount64;
            if (left <= 0 || !await Task.Run(() => WaitWritable((int)left)).ConfigureAwait(false))
                throw new IOException($"timed out after {MessageTimeout.TotalSeconds:0} s (tapdisk is not reading)");
            if (_disposed) throw new IOException("tapdisk is gone");
            if (TryWrite()) return;
        }
    }

    private unsafe bool WaitWritable(int timeoutMs)
    {
        var pfd = new Libc.PollFd { Fd = _fifos.WriteFd, Events = Libc.POLLOUT };
        return Libc.poll(&pfd, 1, timeoutMs) > 0 && (pfd.Revents & Libc.POLLOUT) != 0;
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            _poller?.Remove(_fifos.ReadFd);
            _partialTimer?.Dispose();
            _fifos.Dispose();
        }
    }
}
