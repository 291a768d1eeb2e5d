namespace BlkTapCtrl.Worker.IO;

/// <summary>
/// blktap's tio queue (reference §3.7): requests are queued, merged with their neighbours, and handed
/// to a backend on <see cref="Submit"/>. At most <see cref="Capacity"/> requests are queued or in
/// flight; beyond that they wait in a FIFO (deferral, never failure) and move up after each batch
/// of completions. Loop-thread only.
/// </summary>
public abstract class IoQueue : IDisposable
{
    public const int DefaultCapacity = 402;

    private IoRequestList _queued;
    private IoRequestList _deferred;
    private int _inFlight;

    protected IoQueue(int capacity) => Capacity = capacity;

    public int Capacity { get; }
    public abstract string Name { get; }
    public int Queued => _queued.Count;
    public int Deferred => _deferred.Count;
    public int InFlight => _inFlight;
    public bool HasQueued => _queued.Count > 0;
    public bool IsIdle => _queued.Count == 0 && _deferred.Count == 0 && _inFlight == 0;

    /// <summary>Requests merged into another before submission (statistics for the debug dump and tests).</summary>
    public long MergedCount { get; private set; }

    /// <summary>Submissions handed to the backend after merging.</summary>
    public long SubmittedCount { get; private set; }

    public void Enqueue(IoRequest request)
    {
        if (request.Length < 0)
            throw new ArgumentOutOfRangeException(nameof(request), $"I/O length {request.Length} is negative");
        if (_inFlight + _queued.Count >= Capacity)
            _deferred.Append(request);
        else
            _queued.Append(request);
    }

    /// <summary>Merges and submits everything queued. Synchronous backends complete inline.</summary>
    public void Submit()
    {
        if (_queued.Count == 0) return;
        var batch = _queued;
        _queued = default;
        _inFlight += batch.Count;
        IoRequest? head = null;
        IoRequest? lastPart = null;
        IoRequestList heads = default;
        while (batch.Take() is { } r)
        {
            r.NextPart = null;
            if (head != null && CanJoin(head, r))
            {
                lastPart!.NextPart = r;
                lastPart = r;
                head.MergedLength += r.Length;
                head.Parts++;
                MergedCount++;
                continue;
            }
            if (head != null) heads.Append(head);
            head = r;
            lastPart = r;
            r.MergedLength = r.Length;
            r.Parts = 1;
        }
        if (head != null) heads.Append(head);
        SubmittedCount += heads.Count;
        SubmitMerged(ref heads);
    }

    // Merge rule of §3.7: same opcode and fd, and contiguous both on disk and in memory.
    private static bool CanJoin(IoRequest head, IoRequest r) =>
        r.Operation == head.Operation && r.Operation != IoOperation.FlushData && r.Fd == head.Fd
        && head.Offset + head.MergedLength == r.Offset && head.Buffer + (nint)head.MergedLength == r.Buffer
        && head.MergedLength + r.Length <= int.MaxValue;

    /// <summary>The backend takes every merged head; it must eventually call <see cref="CompleteMerged"/> for each.</summary>
    protected abstract void SubmitMerged(ref IoRequestList heads);

    /// <summary>
    /// Splits a merged result: the full length ⇒ every part succeeds; negative ⇒ every part gets that
    /// error; short ⇒ every part gets −EIO.
    /// </summary>
    protected void CompleteMerged(IoRequest head, long result)
    {
        int status = result == head.MergedLength ? 0 : result < 0 ? (int)result : -Interop.Errno.EIO;
        var part = head;
        while (part != null)
        {
            var next = part.NextPart;
            part.NextPart = null;
            _inFlight--;
            part.Completion!.OnIoCompleted(part, status);
            part = next;
        }
    }

    /// <summary>
    /// Puts a merged run back at the front of the deferred FIFO (the backend had no room). With several
    /// refused runs, requeue the last one first so they keep their order.
    /// </summary>
    protected void Requeue(IoRequest head)
    {
        // The parts go to the front last to first so the run keeps its order. Reversing the part chain in
        // place (rather than collecting it in a stack) keeps this path — a full kernel queue under load —
        // free of allocations like the rest of the request path.
        IoRequest? reversed = null;
        for (var p = head; p != null;)
        {
            var next = p.NextPart;
            p.NextPart = reversed;
            reversed = p;
            p = next;
        }
        while (reversed != null)
        {
            var next = reversed.NextPart;
            reversed.NextPart = null;
            _inFlight--;
            _deferred.Prepend(reversed);
            reversed = next;
        }
    }

    /// <summary>Moves deferred requests up into free capacity (after a completion batch).</summary>
    protected void Refill()
    {
        while (_deferred.Count > 0 && _inFlight + _queued.Count < Capacity)
            _queued.Append(_deferred.Take()!);
    }

    /// <summary>For synchronous backends: refill right after the inline completions.</summary>
    protected void AfterCompletionBatch() => Refill();

    public virtual void Dispose() => GC.SuppressFinalize(this);
}
