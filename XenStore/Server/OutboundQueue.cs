using System.Buffers;
using BlkTapCtrl.Protocol.XenStore;

namespace BlkTapCtrl.XenStore.Server;

/// <summary>
/// A connection's unsent replies and events, as one growing byte buffer that is swapped out whole (one send
/// for everything queued). Bounded in bytes: <see cref="TryEnqueue"/> refuses beyond the limit and the
/// connection is then dropped. Also counts queued frames so the reader can stop taking requests from a
/// client that does not read its replies.
/// </summary>
/// <remarks>
/// Queuing does not wake the writer task: whoever queued (the handling path) sends at once with
/// <see cref="TryTake"/>, because a wake-up per event is a thread hop that costs watch latency on a busy
/// machine. The writer task only takes over what could not be sent without blocking (<see cref="HandOff"/>)
/// and what was queued while another send was in progress (<see cref="Release"/> wakes it). Only one
/// holder of taken bytes exists at a time, so frames leave in the order they were queued.
/// </remarks>
internal sealed class OutboundQueue : IDisposable
{
    private readonly object _lock = new();
    private readonly int _maxBytes;
    private byte[] _buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
    private byte[] _spare = ArrayPool<byte>.Shared.Rent(16 * 1024);
    private int _length;
    private int _frames;
    private int _inFlightFrames;
    private TaskCompletionSource? _dataWaiter;
    private TaskCompletionSource? _drainWaiter;
    private int _drainBelow;
    private bool _closed;
    private bool _writingNow;
    private ArraySegment<byte> _handedOff;

    public OutboundQueue(int maxBytes) => _maxBytes = maxBytes;

    /// <summary>Frames queued or being written.</summary>
    public int PendingFrames { get { lock (_lock) return _frames + _inFlightFrames; } }

    /// <summary>Queues a frame; the caller must then try to send it (<see cref="TryTake"/>).</summary>
    public bool TryEnqueue(XsHeader header, ReadOnlySpan<byte> payload)
    {
        lock (_lock)
        {
            if (_closed) return true;
            int size = XsHeader.Size + payload.Length;
            if (_length + size > _maxBytes) return false;
            if (_length + size > _buffer.Length)
            {
                var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(_buffer.Length * 2, _length + size));
                _buffer.AsSpan(0, _length).CopyTo(bigger);
                ArrayPool<byte>.Shared.Return(_buffer);
                _buffer = bigger;
            }
            header.Write(_buffer.AsSpan(_length));
            payload.CopyTo(_buffer.AsSpan(_length + XsHeader.Size));
            _length += size;
            _frames++;
        }
        return true;
    }

    /// <summary>
    /// For the writer task: waits for bytes handed off or left queued and takes them; call
    /// <see cref="Release"/> with the buffer once written. Returns an empty segment when the queue is closed.
    /// </summary>
    public async ValueTask<ArraySegment<byte>> TakeAsync(CancellationToken ct)
    {
        while (true)
        {
            Task wait;
            lock (_lock)
            {
                if (_handedOff.Count > 0)
                {
                    var rest = _handedOff;
                    _handedOff = default;
                    return rest;
                }
                if (_length > 0 && !_writingNow) return TakeLocked();
                if (_closed && _length == 0 && !_writingNow) return default;
                _dataWaiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                wait = _dataWaiter.Task;
            }
            await wait.WaitAsync(ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Takes everything queued if nobody is writing right now, so the handling path sends replies and events
    /// itself instead of waking the writer. Whoever holds taken bytes ends with <see cref="Release"/> or
    /// <see cref="HandOff"/>.
    /// </summary>
    public bool TryTake(out ArraySegment<byte> taken)
    {
        lock (_lock)
        {
            if (_length == 0 || _writingNow)
            {
                taken = default;
                return false;
            }
            taken = TakeLocked();
            return true;
        }
    }

    private ArraySegment<byte> TakeLocked()
    {
        var taken = new ArraySegment<byte>(_buffer, 0, _length);
        _buffer = _spare.Length > 0 ? _spare : ArrayPool<byte>.Shared.Rent(16 * 1024);
        _spare = [];
        _length = 0;
        _inFlightFrames = _frames;
        _frames = 0;
        _writingNow = true;
        return taken;
    }

    /// <summary>
    /// Passes the unsent rest of taken bytes (the socket buffer is full) to the writer task, which waits until
    /// the client reads; frames queued meanwhile stay behind it, so per-connection order is kept.
    /// </summary>
    public void HandOff(ArraySegment<byte> rest)
    {
        TaskCompletionSource? writer;
        lock (_lock)
        {
            _handedOff = rest;
            writer = _dataWaiter;
            _dataWaiter = null;
        }
        writer?.TrySetResult();
    }

    /// <summary>Returns a buffer from <see cref="TakeAsync"/> or <see cref="TryTake"/> after it was written.</summary>
    public void Release(ArraySegment<byte> written)
    {
        TaskCompletionSource? wake = null;
        TaskCompletionSource? writer = null;
        lock (_lock)
        {
            _writingNow = false;
            if (_length > 0 || _closed)
            {
                writer = _dataWaiter;
                _dataWaiter = null;
            }
            _inFlightFrames = 0;
            if (_spare.Length == 0 && written.Array!.Length <= 256 * 1024) _spare = written.Array;
            else ArrayPool<byte>.Shared.Return(written.Array!);
            if (_drainWaiter != null && _frames < _drainBelow)
            {
                wake = _drainWaiter;
                _drainWaiter = null;
            }
        }
        wake?.TrySetResult();
        writer?.TrySetResult();
    }

    /// <summary>Completes when fewer than <paramref name="frames"/> frames are queued or in flight.</summary>
    public Task WaitBelowAsync(int frames, CancellationToken ct)
    {
        lock (_lock)
        {
            if (_frames + _inFlightFrames < frames || _closed) return Task.CompletedTask;
            _drainBelow = frames;
            _drainWaiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _drainWaiter.Task.WaitAsync(ct);
        }
    }

    public void Close()
    {
        TaskCompletionSource? a, b;
        lock (_lock)
        {
            _closed = true;
            a = _dataWaiter;
            b = _drainWaiter;
            _dataWaiter = _drainWaiter = null;
        }
        a?.TrySetResult();
        b?.TrySetResult();
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _closed = true;
            if (_buffer.Length > 0) ArrayPool<byte>.Shared.Return(_buffer);
            if (_spare.Length > 0) ArrayPool<byte>.Shared.Return(_spare);
            _buffer = _spare = [];
        }
    }
}
