using System.Buffers;
using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Threading.Channels;
using BlkTapCtrl.Protocol.XenStore;

namespace BlkTapCtrl.XenStore.Client;

/// <summary>
/// One open stream to the daemon: a writer loop that batches queued frames into few writes (so pipelined
/// calls cost few syscalls), a reader loop that matches replies to pending calls by req_id and hands
/// watch events to <see cref="_onWatchEvent"/> without ever waiting on a consumer.
/// </summary>
internal sealed class XenStoreConnection : IAsyncDisposable
{
    private readonly Stream _stream;
    private readonly string _target;
    private readonly Action<XenStoreWatchEvent> _onWatchEvent;
    private readonly Action<XenStoreConnection, Exception> _onLost;
    private readonly ConcurrentDictionary<uint, PendingCall> _pending = new();
    private readonly Channel<OutgoingFrame> _outgoing =
        Channel.CreateUnbounded<OutgoingFrame>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _shutdown = new();
    private readonly Task _readLoop;
    private readonly Task _writeLoop;
    private int _nextRequestId;
    private Exception? _failure;

    private XenStoreConnection(Stream stream, string target, Action<XenStoreWatchEvent> onWatchEvent,
        Action<XenStoreConnection, Exception> onLost)
    {
        _stream = stream;
        _target = target;
        _onWatchEvent = onWatchEvent;
        _onLost = onLost;
        _readLoop = Task.Run(ReadLoopAsync);
        _writeLoop = Task.Run(WriteLoopAsync);
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
        if (!_outgoing.Writer.TryWrite(new OutgoingFrame(frame, length)))
        {
            ArrayPool<byte>.Shared.Return(frame);
            _pending.TryRemove(requestId, out _);
            return Task.FromException<XenStoreReply>(Lost(_failure ?? new ObjectDisposedException(nameof(XenStoreClient))));
        }
        if (_failure != null && _pending.TryRemove(requestId, out _))
            call.TrySetException(Lost(_failure));
        if (ct.CanBeCanceled)
            call.RegisterCancellation(ct, () => _pending.TryRemove(requestId, out _));
        return call.Task;
    }

    /// <summary>Fails every call whose deadline passed; run periodically by the client.</summary>
    public void ExpireOverdueCalls(long nowTicks)
    {
        foreach (var (id, call) in _pending)
        {
            if (call.DeadlineTicks <= nowTicks && _pending.TryRemove(id, out _))
                call.TrySetException(new TimeoutException($"xenstore request {id} to {_target} got no reply within {call.Timeout}"));
        }
    }

    private async Task WriteLoopAsync()
    {
        var batch = new byte[64 * 1024];
        try
        {
            var reader = _outgoing.Reader;
            while (await reader.WaitToReadAsync(_shutdown.Token).ConfigureAwait(false))
            {
                int used = 0;
                while (used + XsLimits.FrameMax <= batch.Length && reader.TryRead(out var frame))
                {
                    frame.Bytes.AsSpan(0, frame.Length).CopyTo(batch.AsSpan(used));
                    used += frame.Length;
                    ArrayPool<byte>.Shared.Return(frame.Bytes);
                }
                if (_stream is FileStream)
                {
                    // The xenbus device wants exactly one message per write().
                    int offset = 0;
                    while (offset < used)
                    {
                        int frameLength = XsHeader.Size + (int)XsHeader.Read(batch.AsSpan(offset)).Length;
                        await _stream.WriteAsync(batch.AsMemory(offset, frameLength), _shutdown.Token).ConfigureAwait(false);
                        offset += frameLength;
                    }
                }
                else
                {
                    await _stream.WriteAsync(batch.AsMemory(0, used), _shutdown.Token).ConfigureAwait(false);
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
        _outgoing.Writer.TryComplete();
        _shutdown.Cancel();
        try { _stream.Dispose(); } catch (IOException) { }
        foreach (var id in _pending.Keys)
        {
            if (_pending.TryRemove(id, out var call))
                call.TrySetException(Lost(cause));
        }
        while (_outgoing.Reader.TryRead(out var frame))
            ArrayPool<byte>.Shared.Return(frame.Bytes);
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
        try { await Task.WhenAll(_readLoop, _writeLoop).ConfigureAwait(false); }
        catch (Exception) { /* loops report through Fail */ }
        _shutdown.Dispose();
    }

    private readonly record struct OutgoingFrame(byte[] Bytes, int Length);

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
