using System.Buffers;
using System.Collections.Concurrent;
using System.Net.Sockets;
using BlkTapCtrl.Protocol.XenStore;

namespace BlkTapCtrl.XenStore.Client;

/// <summary>
/// One open stream to the daemon: calls queue their frames and the first caller into an idle connection
/// writes everything queued (so pipelined calls cost few syscalls and no thread hop), a reader loop that matches replies to pending calls by req_id and hands
/// watch events to <see cref="_onWatchEvent"/> without ever waiting on a consumer.
/// </summary>
internal sealed class XenStoreConnection : IAsyncDisposable
{
    private readonly Stream _stream;
    private readonly string _target;
    private readonly Action<XenStoreWatchEvent> _onWatchEvent;
    private readonly Action<XenStoreConnection, Exception> _onLost;
    private readonly ConcurrentDictionary<uint, PendingCall> _pending = new();
    private readonly object _sendLock = new();
    private readonly CancellationTokenSource _shutdown = new();
    private readonly Task _readLoop;
    // Request timeouts without periodic wake-ups: one timer armed to the earliest deadline of the calls in
    // flight, disarmed while none has a deadline (an idle client never wakes). Every call shares the
    // client's timeout, so deadlines grow with send order and a new call rarely needs to re-arm it.
    private readonly Timer _deadlineTimer;
    private readonly object _timerLock = new();
    private long _armedDeadline = long.MaxValue;
    // Frames queued for sending, and the buffer being written. Whoever queues into an idle connection
    // writes (usually completing synchronously), so a call costs no hop to a writer thread, and calls
    // queued meanwhile leave together in the next write.
    private byte[] _queued = new byte[64 * 1024];
    private byte[] _writing = new byte[64 * 1024];
    private int _queuedLength;
    private bool _flushing;
    private bool _closed;
    private int _nextRequestId;
    private Exception? _failure;

    private XenStoreConnection(Stream stream, string target, Action<XenStoreWatchEvent> onWatchEvent,
        Action<XenStoreConnection, Exception> onLost)
    {
        _stream = stream;
        _target = target;
        _onWatchEvent = onWatchEvent;
        _onLost = onLost;
        _deadlineTimer = new Timer(static self => ((XenStoreConnection)self!).ExpireOverdueCalls(), this,
            System.Threading.Timeout.Infinite, System.Threading.Timeout.Infinite);
        _readLoop = Task.Run(ReadLoopAsync);
    }

    public string Target => _target;

    public bool IsAlive => _failure == null;

    public static async Task<XenStoreConnection> OpenAsync(string? path, Action<XenStoreWatchEvent> onWatchEvent,
        Action<XenStoreConnection, Exception> onLost, CancellationToken ct)
    {
        if (path != null)
        {
            try
            {
                return new XenStoreConnection(await OpenTargetAsync(path, ct).ConfigureAwait(false), path, onWatchEvent, onLost);
            }
            catch (Exception e) when (e is SocketException or IOException or UnauthorizedAccessException)
            {
                throw new XenStoreConnectionLostException($"cannot connect to xenstored at {path}: {e.Message}", e);
            }
        }

        var socketPath = XenStoreClientOptions.DefaultPath();
        try
        {
            return new XenStoreConnection(await OpenTargetAsync(socketPath, ct).ConfigureAwait(false), socketPath, onWatchEvent, onLost);
        }
        catch (Exception socketError) when (socketError is SocketException or IOException)
        {
            // libxenstore falls back to the kernel device only when the socket cannot be reached.
            if (!File.Exists(XenStoreClientOptions.XenbusDevicePath))
                throw new XenStoreConnectionLostException($"cannot connect to xenstored at {socketPath}: {socketError.Message}", socketError);
            return await OpenAsync(XenStoreClientOptions.XenbusDevicePath, onWatchEvent, onLost, ct).ConfigureAwait(false);
        }
    }

    private static async Task<Stream> OpenTargetAsync(string path, CancellationToken ct)
    {
        if (path.StartsWith("/dev/", StringComparison.Ordinal))
        {
            // xenbus takes one whole message per write(); the writer loop never splits a frame.
            return new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, bufferSize: 0, useAsync: false);
        }
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), ct).ConfigureAwait(false);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        return new NetworkStream(socket, ownsSocket: true);
    }

    /// <summary>Allocates a request id; never 0, so our replies are never confused with libxenstore's.</summary>
    public uint NextRequestId()
    {
        uint id = (uint)Interlocked.Increment(ref _nextRequestId);
        return id == 0 ? (uint)Interlocked.Increment(ref _nextRequestId) : id;
    }

    /// <summary>
    /// Queues a frame (rented from the shared pool; ownership passes here) and completes with the reply.
    /// ERROR replies are returned as such; the caller turns them into exceptions with context.
    /// </summary>
    public Task<XenStoreReply> SendAsync(byte[] frame, int length, uint requestId, TimeSpan timeout, CancellationToken ct)
    {
        var failure = _failure;
        if (failure != null)
        {
            ArrayPool<byte>.Shared.Return(frame);
            return Task.FromException<XenStoreReply>(Lost(failure));
        }
        var call = new PendingCall(requestId, timeout);
        _pending[requestId] = call;
        ArmDeadlineTimer(call.DeadlineTicks);
        bool flush;
        lock (_sendLock)
        {
            if (_closed)
            {
                ArrayPool<byte>.Shared.Return(frame);
                _pending.TryRemove(requestId, out _);
                return Task.FromException<XenStoreReply>(Lost(_failure ?? new ObjectDisposedException(nameof(XenStoreClient))));
            }
            if (_queuedLength + length > _queued.Length)
                Array.Resize(ref _queued, Math.Max(_queued.Length * 2, _queuedLength + length));
            frame.AsSpan(0, length).CopyTo(_queued.AsSpan(_queuedLength));
            _queuedLength += length;
            flush = !_flushing;
            _flushing = true;
        }
        ArrayPool<byte>.Shared.Return(frame);
        if (flush) _ = FlushAsync();
        if (_failure != null && _pending.TryRemove(requestId, out _))
            call.TrySetException(Lost(_failure));
        if (ct.CanBeCanceled)
            call.RegisterCancellation(ct, () => _pending.TryRemove(requestId, out _));
        return call.Task;
    }

    /// <summary>Makes the deadline timer fire no later than <paramref name="deadline"/> (TickCount64 ms).</summary>
    private void ArmDeadlineTimer(long deadline)
    {
        if (deadline == long.MaxValue || Volatile.Read(ref _armedDeadline) <= deadline)
            return; // no deadline, or the timer already fires at or before it
        lock (_timerLock)
        {
            if (_armedDeadline <= deadline || _closed)
                return;
            _armedDeadline = deadline;
            _deadlineTimer.Change(Math.Max(0, deadline - Environment.TickCount64), System.Threading.Timeout.Infinite);
        }
    }

    /// <summary>
    /// The deadline timer fired: fails every call whose deadline passed and re-arms for the earliest
    /// remaining one. A call sent meanwhile either is seen here or re-arms the timer itself, because the
    /// armed deadline is cleared before the scan.
    /// </summary>
    private void ExpireOverdueCalls()
    {
        lock (_timerLock)
            _armedDeadline = long.MaxValue;
        long now = Environment.TickCount64;
        long next = long.MaxValue;
        foreach (var (id, call) in _pending)
        {
            if (call.DeadlineTicks > now)
                next = Math.Min(next, call.DeadlineTicks);
            else if (_pending.TryRemove(id, out _))
                call.TrySetException(new TimeoutException($"xenstore request {id} to {_target} got no reply within {call.Timeout}"));
        }
        ArmDeadlineTimer(next);
    }

    /// <summary>Writes queued frames until none are left; only one flush runs at a time.</summary>
    private async Task FlushAsync()
    {
        try
        {
            while (true)
            {
                byte[] buffer;
                int length;
                lock (_sendLock)
                {
                    if (_queuedLength == 0 || _closed)
                    {
                        _flushing = false;
                        return;
                    }
                    buffer = _queued;
                    length = _queuedLength;
                    _queued = _writing;
                    _writing = buffer;
                    _queuedLength = 0;
                }
                if (_stream is FileStream)
                {
                    // The xenbus device wants exactly one message per write().
                    int offset = 0;
                    while (offset < length)
                    {
                        int frameLength = XsHeader.Size + (int)XsHeader.Read(buffer.AsSpan(offset)).Length;
                        await _stream.WriteAsync(buffer.AsMemory(offset, frameLength), _shutdown.Token).ConfigureAwait(false);
                        offset += frameLength;
                    }
                }
                else
                {
                    await _stream.WriteAsync(buffer.AsMemory(0, length), _shutdown.Token).ConfigureAwait(false);
                }
            }
        }
        catch (Exception e)
        {
            Fail(e is OperationCanceledException ? new ObjectDisposedException(nameof(XenStoreClient)) : e);
        }
    }

    private async Task ReadLoopAsync()
    {
        using var frames = new XsFrameReader();
        try
        {
            while (true)
            {
                int n = await _stream.ReadAsync(frames.GetFillBuffer(), _shutdown.Token).ConfigureAwait(false);
                if (n == 0)
                    throw new EndOfStreamException($"xenstored at {_target} closed the connection");
                frames.Advance(n);
                while (frames.TryRead(out var header, out var payload))
                    Dispatch(header, payload.Span);
            }
        }
        catch (Exception e)
        {
            Fail(e is OperationCanceledException ? new ObjectDisposedException(nameof(XenStoreClient)) : e);
        }
    }

    private void Dispatch(XsHeader header, ReadOnlySpan<byte> payload)
    {
        if (header.Type == XsMessageType.WatchEvent)
        {
            var (path, token) = XsPayload.WatchEvent(payload);
            _onWatchEvent(new XenStoreWatchEvent(path, token));
            return;
        }
        // A reply for a call that was cancelled or timed out is simply dropped.
        if (_pending.TryRemove(header.RequestId, out var call))
            call.TrySetResult(new XenStoreReply(header.Type, payload.ToArray()));
    }

    private void Fail(Exception cause)
    {
        if (Interlocked.CompareExchange(ref _failure, cause, null) != null) return;
        lock (_sendLock) _closed = true;
        lock (_timerLock) _deadlineTimer.Dispose();
        _shutdown.Cancel();
        try { _stream.Dispose(); } catch (IOException) { }
        foreach (var id in _pending.Keys)
        {
            if (_pending.TryRemove(id, out var call))
                call.TrySetException(Lost(cause));
        }
        if (cause is not ObjectDisposedException)
            _onLost(this, cause);
    }

    private XenStoreConnectionLostException Lost(Exception cause) => cause switch
    {
        ObjectDisposedException => new XenStoreConnectionLostException($"the xenstore connection to {_target} was closed", cause),
        _ => new XenStoreConnectionLostException($"lost the xenstore connection to {_target}: {cause.Message}", cause),
    };

    public async ValueTask DisposeAsync()
    {
        Fail(new ObjectDisposedException(nameof(XenStoreClient)));
        try { await _readLoop.ConfigureAwait(false); }
        catch (Exception) { /* loops report through Fail */ }
        _shutdown.Dispose();
    }

    private sealed class PendingCall : TaskCompletionSource<XenStoreReply>
    {
        private CancellationTokenRegistration _registration;

        public PendingCall(uint requestId, TimeSpan timeout) : base(TaskCreationOptions.RunContinuationsAsynchronously)
        {
            RequestId = requestId;
            Timeout = timeout;
            DeadlineTicks = timeout == System.Threading.Timeout.InfiniteTimeSpan
                ? long.MaxValue
                : Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        }

        public uint RequestId { get; }
        public TimeSpan Timeout { get; }
        public long DeadlineTicks { get; }

        public void RegisterCancellation(CancellationToken ct, Action forget)
        {
            _registration = ct.Register(() =>
            {
                forget();
                TrySetCanceled(ct);
            });
            _ = Task.ContinueWith(static (_, r) => ((CancellationTokenRegistration)r!).Dispose(), _registration,
                CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }
}

/// <summary>A raw reply: its type (the request's type, or ERROR) and payload.</summary>
public readonly record struct XenStoreReply(XsMessageType Type, byte[] Payload);
