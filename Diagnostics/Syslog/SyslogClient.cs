using System.Globalization;
using System.Text;
using BlkTapCtrl.Diagnostics.Native;

namespace BlkTapCtrl.Diagnostics.Syslog;

/// <summary>
/// A syslog client that never blocks its caller (CA-34846): a unix datagram socket to /dev/log (or the path
/// given with <c>--syslog-socket</c>), connected lazily, packets sent with MSG_DONTWAIT. When the daemon is
/// slow (EAGAIN) packets wait, in order, in a fixed-size ring until the owner's event loop reports the socket
/// writable (<see cref="FileDescriptor"/>, <see cref="WantsWritable"/>, <see cref="OnWritable"/>). A full ring
/// drops messages and counts them; a <c>N messages dropped</c> warning follows once the ring has drained.
/// <para>
/// Every member may be called from any thread (a lock guards the state): the worker calls it from its loop and
/// from signal handlers; the controller drives it with <see cref="SyslogWritablePump"/>.
/// </para>
/// </summary>
public sealed class SyslogClient : IDisposable
{
    private const int MaxTextChars = SyslogPacketWriter.MaxPacketBytes;

    private readonly Lock _gate = new();
    private readonly SyslogClientOptions _options;
    private readonly SyslogPacketWriter _writer;
    private readonly SyslogRing _ring;
    private readonly byte[] _sockaddr;
    private readonly int _sockaddrLength;
    private readonly byte[] _staging = new byte[SyslogPacketWriter.MaxPacketBytes];
    private readonly char[] _statusText = new char[256];
    private int _fd;
    private bool _connected;
    private long _messages, _bytes, _transmits, _failed, _dropped;
    private long _unreportedDrops;
    private bool _armed;          // WantsWritableChanged(true) was raised: the owner's loop will call OnWritable
    private bool _flushPending;   // LogDeferred queued packets that wait for Flush
    private const int BatchSize = 16;

    public SyslogClient(SyslogClientOptions options)
    {
        _options = options;
        _writer = new SyslogPacketWriter(options.Format, options.Facility, options.Ident, options.ProcessId);
        _ring = new SyslogRing(options.RingBytes);
        (_sockaddr, _sockaddrLength) = UnixAddress(options.SocketPath);
        _fd = LibC.Socket(LibC.AF_UNIX, LibC.SOCK_DGRAM | LibC.SOCK_NONBLOCK | LibC.SOCK_CLOEXEC, 0);
        if (_fd < 0)
        {
            int errno = LibC.LastErrno;
            throw new IOException($"syslog: socket(AF_UNIX, SOCK_DGRAM) failed: {LibC.ErrnoText(errno)} (errno {errno})");
        }
    }

    public string SocketPath => _options.SocketPath;

    /// <summary>The socket, for the owner's poll/epoll set (stable for the client's life).</summary>
    public int FileDescriptor => _fd;

    /// <summary>True while packets wait for the daemon: watch the fd for WRITE readiness only then.</summary>
    public bool WantsWritable
    {
        get { lock (_gate) return !_ring.IsEmpty; }
    }

    /// <summary>
    /// Raised (under the client's lock, so keep it short and do not log from it) when <see cref="WantsWritable"/>
    /// changes: the event loop unmasks or masks its WRITE event.
    /// </summary>
    public event Action<bool>? WantsWritableChanged;

    public SyslogStatistics Statistics
    {
        get
        {
            lock (_gate)
                return new SyslogStatistics(_messages, _bytes, _transmits, _failed, _dropped, _ring.Count);
        }
    }

    /// <summary>Logs one line. Never blocks: sends now, queues behind earlier packets, or drops and counts.</summary>
    public void Log(SyslogSeverity severity, ReadOnlySpan<char> text)
    {
        lock (_gate)
        {
            if (_fd < 0)
                return;
            LogLocked(severity, text);
        }
    }

    /// <summary>
    /// Logs one line from a hot path: the packet is formatted and queued now, and leaves with the next
    /// <see cref="Flush"/> together with everything else queued, in one sendmmsg. The worker's loop flushes at the
    /// end of every pass, so an error still reaches syslog within the pass that saw it (CA-34846), while a burst of
    /// errors costs one system call instead of one each. Ordering with <see cref="Log"/> is kept.
    /// </summary>
    public void LogDeferred(SyslogSeverity severity, ReadOnlySpan<char> text)
    {
        lock (_gate)
        {
            if (_fd < 0)
                return;
            QueueLocked(FormatLocked(severity, text));
        }
    }

    /// <summary>
    /// <see cref="LogDeferred(SyslogSeverity, ReadOnlySpan{char})"/> for a caller that already has the text in
    /// UTF-8 and the time it was logged (the log file line's own): no second transcoding, no second clock read.
    /// </summary>
    public void LogDeferredUtf8(SyslogSeverity severity, ReadOnlySpan<byte> utf8Text, DateTimeOffset localTime)
    {
        lock (_gate)
        {
            if (_fd < 0)
                return;
            QueueLocked(FormatLocked(severity, utf8Text, localTime));
        }
    }

    /// <summary><see cref="Log"/> with the text already in UTF-8 and its time given (see <see cref="LogDeferredUtf8"/>).</summary>
    public void LogUtf8(SyslogSeverity severity, ReadOnlySpan<byte> utf8Text, DateTimeOffset localTime)
    {
        lock (_gate)
        {
            if (_fd < 0)
                return;
            SendOrQueueLocked(FormatLocked(severity, utf8Text, localTime));
        }
    }

    private void QueueLocked(ReadOnlySpan<byte> packet)
    {
        if (_unreportedDrops > 0 || !_ring.TryEnqueue(packet))
        {
            Drop();
            return;
        }
        _flushPending = true;
    }

    /// <summary>Sends what <see cref="LogDeferred"/> queued (unless the loop already waits for the socket to drain).</summary>
    public void Flush()
    {
        // Called after every loop pass: most passes queued nothing, and they should not pay for the lock.
        if (!Volatile.Read(ref _flushPending))
            return;
        lock (_gate)
        {
            if (_fd < 0 || !_flushPending)
                return;
            _flushPending = false;
            if (!_armed)
                DrainLocked();
        }
    }

    /// <summary>The event loop saw the socket writable: send queued packets until the daemon pushes back.</summary>
    public void OnWritable()
    {
        lock (_gate)
        {
            if (_fd < 0)
                return;
            DrainLocked();
        }
    }

    /// <summary>
    /// Logs the close report (<c>C messages, B bytes, xmits: X, failed: F, dropped: D</c>), waits up to
    /// <see cref="SyslogClientOptions.CloseDrainTimeout"/> for the daemon to take what is queued, then closes.
    /// </summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_fd < 0)
                return;
            LogCloseReportLocked();
            var deadline = Environment.TickCount64 + (long)_options.CloseDrainTimeout.TotalMilliseconds;
            while (!_ring.IsEmpty)
            {
                long left = deadline - Environment.TickCount64;
                if (left <= 0 || !WaitWritable(_fd, (int)left))
                    break;
                DrainLocked();
            }
            LibC.Close(_fd);
            _fd = -1;
            ArmLocked(false);
        }
    }

    private ReadOnlySpan<byte> FormatLocked(SyslogSeverity severity, ReadOnlySpan<char> text)
    {
        if (text.Length > MaxTextChars)
            text = text[..MaxTextChars];
        int length = _writer.Write(_staging, severity, _options.Clock.GetLocalNow(), text);
        _messages++;
        _bytes += length;
        return _staging.AsSpan(0, length);
    }

    private ReadOnlySpan<byte> FormatLocked(SyslogSeverity severity, ReadOnlySpan<byte> utf8Text, DateTimeOffset localTime)
    {
        int length = _writer.WriteUtf8(_staging, severity, localTime, utf8Text);
        _messages++;
        _bytes += length;
        return _staging.AsSpan(0, length);
    }

    private void LogLocked(SyslogSeverity severity, ReadOnlySpan<char> text) => SendOrQueueLocked(FormatLocked(severity, text));

    private void SendOrQueueLocked(ReadOnlySpan<byte> packet)
    {

        // While an earlier drop is unreported everything is dropped, so the report lands where the gap is.
        if (_unreportedDrops > 0)
        {
            Drop();
            return;
        }
        if (!_ring.IsEmpty)
        {
            if (!_ring.TryEnqueue(packet))
                Drop();
            else if (!_armed)
                DrainLocked(); // deferred packets wait for no one: they leave first, then this one
            return;
        }
        switch (TrySend(packet))
        {
            case SendResult.Sent:
                _transmits++;
                break;
            case SendResult.WouldBlock:
                _ring.TryEnqueue(packet);   // the ring is empty, one packet always fits
                ArmLocked(true);
                break;
            default:
                _failed++;
                break;
        }
    }

    private void DrainLocked()
    {
        if (_ring.IsEmpty)
            return;
        Span<(int Offset, int Length)> batch = stackalloc (int, int)[BatchSize];
        while (!_ring.IsEmpty)
        {
            int n = _ring.PeekMany(batch);
            int sent = SendBatch(batch[..n], out var result);
            for (int i = 0; i < sent; i++)
                _ring.Dequeue();
            _transmits += sent;
            if (result == SendResult.WouldBlock)
            {
                ArmLocked(true);
                return;
            }
            if (result == SendResult.Failed)
            {
                _failed++;   // the daemon went away: discard rather than stall the queue forever
                _ring.Dequeue();
            }
        }
        ArmLocked(false);
        if (_unreportedDrops > 0)
        {
            long n = _unreportedDrops;
            _unreportedDrops = 0;
            LogStatusLocked(SyslogSeverity.Warning, $"{n} messages dropped");
        }
    }

    private void ArmLocked(bool wants)
    {
        if (_armed == wants) return;
        _armed = wants;
        WantsWritableChanged?.Invoke(wants);
    }

    /// <summary>
    /// Sends the packets in one sendmmsg; returns how many left. <paramref name="result"/> says why it stopped
    /// early: WouldBlock (the daemon is slow) or Failed (the first unsent packet cannot be delivered).
    /// </summary>
    private unsafe int SendBatch(ReadOnlySpan<(int Offset, int Length)> packets, out SendResult result)
    {
        result = SendResult.Sent;
        var iov = stackalloc IoVec[packets.Length];
        var messages = stackalloc LibC.MMsgHdr[packets.Length];
        fixed (byte* ring = _ring.Buffer)
        {
            for (int i = 0; i < packets.Length; i++)
            {
                iov[i] = new IoVec { Base = ring + packets[i].Offset, Length = (nuint)packets[i].Length };
                messages[i] = new LibC.MMsgHdr { Header = new MsgHdr { Iov = iov + i, IovLength = 1 } };
            }
            for (int attempt = 0; ; attempt++)
            {
                if (!_connected && !TryConnect())
                {
                    result = SendResult.Failed;
                    return 0;
                }
                int sent;
                do sent = LibC.SendMany(_fd, messages, (uint)packets.Length, LibC.MSG_DONTWAIT | LibC.MSG_NOSIGNAL);
                while (sent < 0 && LibC.LastErrno == LibC.EINTR);
                if (sent >= 0)
                {
                    // Fewer than asked: the next one would have blocked or failed; the caller's next batch says which.
                    return sent;
                }
                int errno = LibC.LastErrno;
                if (errno == LibC.EAGAIN)
                {
                    result = SendResult.WouldBlock;
                    return 0;
                }
                bool reconnectable = errno is LibC.ENOTCONN or LibC.ECONNREFUSED or LibC.ECONNRESET or LibC.EDESTADDRREQ;
                _connected = false;
                if (!reconnectable || attempt > 0)
                {
                    result = SendResult.Failed;
                    return 0;
                }
            }
        }
    }

    private void Drop()
    {
        _dropped++;
        _unreportedDrops++;
    }

    private void LogCloseReportLocked() =>
        LogStatusLocked(SyslogSeverity.Informational,
            $"{_messages} messages, {_bytes} bytes, xmits: {_transmits}, failed: {_failed}, dropped: {_dropped}");

    /// <summary>The client's own lines ("tapdisk-syslog: ..."), formatted into a reused buffer.</summary>
    private void LogStatusLocked(SyslogSeverity severity,
        [System.Runtime.CompilerServices.InterpolatedStringHandlerArgument("")] ref StatusText text)
    {
        LogLocked(severity, text.Written);
    }

    private enum SendResult { Sent, WouldBlock, Failed }

    private unsafe SendResult TrySend(ReadOnlySpan<byte> packet)
    {
        for (int attempt = 0; ; attempt++)
        {
            if (!_connected && !TryConnect())
                return SendResult.Failed;
            nint sent;
            fixed (byte* p = packet)
            {
                do sent = LibC.Send(_fd, p, (nuint)packet.Length, LibC.MSG_DONTWAIT | LibC.MSG_NOSIGNAL);
                while (sent < 0 && LibC.LastErrno == LibC.EINTR);
            }
            if (sent >= 0)
                return SendResult.Sent;
            int errno = LibC.LastErrno;
            if (errno == LibC.EAGAIN)
                return SendResult.WouldBlock;
            // The daemon restarted (its socket was re-created) or we never connected: reconnect, resend once.
            bool reconnectable = errno is LibC.ENOTCONN or LibC.ECONNREFUSED or LibC.ECONNRESET or LibC.EDESTADDRREQ;
            _connected = false;
            if (!reconnectable || attempt > 0)
                return SendResult.Failed;
        }
    }

    private unsafe bool TryConnect()
    {
        fixed (byte* a = _sockaddr)
        {
            int rc;
            do rc = LibC.Connect(_fd, a, (uint)_sockaddrLength);
            while (rc < 0 && LibC.LastErrno == LibC.EINTR);
            _connected = rc == 0;
        }
        return _connected;
    }

    private static unsafe bool WaitWritable(int fd, int timeoutMs)
    {
        var pfd = new LibC.PollFd { Fd = fd, Events = LibC.POLLOUT };
        int rc = LibC.Poll(&pfd, 1, timeoutMs);
        return rc > 0 && (pfd.REvents & LibC.POLLOUT) != 0;
    }

    private static (byte[] Address, int Length) UnixAddress(string path)
    {
        var bytes = Encoding.UTF8.GetBytes(path);
        if (bytes.Length == 0 || bytes.Length >= LibC.SunPathLength)
            throw new ArgumentException(
                $"syslog socket path '{path}' is {bytes.Length} bytes; a unix socket path must be 1..{LibC.SunPathLength - 1} bytes",
                nameof(path));
        var address = new byte[2 + LibC.SunPathLength];
        address[0] = LibC.AF_UNIX;   // sa_family, little-endian u16
        bytes.CopyTo(address, 2);
        return (address, 2 + bytes.Length + 1);
    }

    /// <summary>Interpolates a status line into the client's reused char buffer (no string per report).</summary>
    [System.Runtime.CompilerServices.InterpolatedStringHandler]
    private ref struct StatusText
    {
        private readonly char[] _buffer;
        private int _length;

        public StatusText(int literalLength, int formattedCount, SyslogClient client)
        {
            _buffer = client._statusText;
            _length = 0;
            AppendLiteral(client._options.StatusPrefix);
            AppendLiteral(": ");
        }

        public readonly ReadOnlySpan<char> Written => _buffer.AsSpan(0, _length);

        public void AppendLiteral(string s)
        {
            int n = Math.Min(s.Length, _buffer.Length - _length);
            s.AsSpan(0, n).CopyTo(_buffer.AsSpan(_length));
            _length += n;
        }

        public void AppendFormatted(long value)
        {
            if (value.TryFormat(_buffer.AsSpan(_length), out int w, default, CultureInfo.InvariantCulture))
                _length += w;
        }
    }
}
