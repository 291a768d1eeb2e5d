namespace BlkTapCtrl.Worker.Vbd;

/// <summary>
/// One frontend request (blktap's vreq). Rented from the VBD's fixed pool with
/// <see cref="VirtualBlockDevice.TryRentRequest"/>, filled in by the frontend, handed over with <see cref="VirtualBlockDevice.Submit"/>,
/// and given back to the frontend exactly once through <see cref="IVbdFrontend.OnRequestCompleted"/>,
/// after which the VBD reuses it. Reusing pooled requests is what keeps the hot path allocation-free.
/// <para>
/// Data lives in the frontend's memory: each segment is a pointer to native or pinned memory (e.g. a
/// blkif data page, or an NBD buffer from <see cref="IO.AlignedBuffer"/>) that must stay valid and
/// unmoved until the completion. Buffers, offsets and lengths aligned to 512 bytes go straight to
/// O_DIRECT I/O; unaligned ones take a buffered path.
/// </para>
/// </summary>
public sealed class VbdRequest
{
    /// <summary>At most this many segments per request (blkif's 11).</summary>
    public const int MaxSegments = 11;

    private readonly nint[] _segmentBuffers = new nint[MaxSegments];
    private readonly int[] _segmentSectors = new int[MaxSegments];

    internal VbdRequest(VirtualBlockDevice vbd, int slot)
    {
        Vbd = vbd;
        Slot = slot;
    }

    public VirtualBlockDevice Vbd { get; }

    /// <summary>Index in the VBD's pool (stable for the request's life).</summary>
    public int Slot { get; }

    /// <summary>The frontend that rented it and gets its completion.</summary>
    public IVbdFrontend? Frontend { get; internal set; }

    public VbdOperation Operation { get; set; }

    /// <summary>First 512-byte sector on the virtual disk.</summary>
    public ulong Sector { get; set; }

    /// <summary>The frontend's own id for the request (blkif id, NBD handle); the VBD never looks at it.</summary>
    public ulong Tag { get; set; }

    /// <summary>Any extra frontend state (e.g. the connection); the VBD never looks at it.</summary>
    public object? FrontendState { get; set; }

    public int SegmentCount { get; private set; }

    /// <summary>Total sectors over all segments.</summary>
    public int TotalSectors { get; private set; }

    /// <summary>0 once answered successfully, else the first error as −errno (e.g. −EIO, −ENOSPC).</summary>
    public int Error { get; internal set; }

    public bool Succeeded => Error == 0;

    /// <summary>
    /// Appends <paramref name="sectors"/> 512-byte sectors of data at <paramref name="buffer"/>.
    /// Segments that follow each other in memory become one I/O (CA-27732).
    /// </summary>
    public void AddSegment(nint buffer, int sectors)
    {
        if (SegmentCount >= MaxSegments)
            throw new InvalidOperationException($"request already has {MaxSegments} segments");
        if (buffer == 0)
            throw new ArgumentException("segment buffer is null", nameof(buffer));
        _segmentBuffers[SegmentCount] = buffer;
        _segmentSectors[SegmentCount] = sectors;
        SegmentCount++;
        TotalSectors += sectors;
    }

    public nint SegmentBuffer(int i) => _segmentBuffers[i];
    public int SegmentSectors(int i) => _segmentSectors[i];

    // ---- engine state (blktap's vreq fields) ----
    internal VbdRequest? Prev;
    internal VbdRequest? Next;
    internal VbdRequestList? List;
    internal bool Rented;
    internal bool Submitted;
    internal bool Failed;
    /// <summary>Rejected by the request check: retrying cannot change the answer.</summary>
    internal bool Invalid;
    internal int Submitting;
    internal long PendingUnits;
    internal int NumRetries;
    internal long ArrivalTime;
    internal long LastTry;

    internal void Reset()
    {
        Frontend = null;
        FrontendState = null;
        Operation = VbdOperation.Read;
        Sector = 0;
        Tag = 0;
        SegmentCount = 0;
        TotalSectors = 0;
        Error = 0;
        Failed = false;
        Invalid = false;
        Submitting = 0;
        PendingUnits = 0;
        NumRetries = 0;
        Submitted = false;
    }

    /// <summary>Marks the request failed, keeping its first error.</summary>
    internal void Fail(int error)
    {
        Failed = true;
        if (Error == 0) Error = error;
    }

    internal void ClearFailure()
    {
        Failed = false;
        Error = 0;
    }
}
