namespace BlkTapCtrl.Protocol.Blkif;

/// <summary>
/// Geometry of the blktap ring mapping (reference §3.6): page 0 is the blkif shared ring, the data pages
/// follow, 11 per ring slot. x86-64 ABI (112-byte requests, 16-byte responses).
/// </summary>
public static class BlkifLayout
{
    public const int PageSize = 4096;
    public const int SectorSize = 512;
    public const int SectorsPerPage = PageSize / SectorSize;

    // Shared ring header (ring.h's struct: four free-running 32-bit indexes, then 48 bytes of padding).
    public const int RequestProducerOffset = 0;
    public const int RequestEventOffset = 4;
    public const int ResponseProducerOffset = 8;
    public const int ResponseEventOffset = 12;
    /// <summary>blktap2 keeps its control message (pause/resume/close) in the first padding byte.</summary>
    public const int ControlByteOffset = 16;
    public const int EntriesOffset = 64;

    public const int RequestSize = 112;
    public const int ResponseSize = 16;
    /// <summary>Requests and responses share the slots (a union), so a slot is as large as a request.</summary>
    public const int EntrySize = RequestSize;
    /// <summary>The largest power of two of entries that fits the page after the header: (4096−64)/112 = 36 ⇒ 32.</summary>
    public const int RingSlots = 32;
    public const int MaxSegments = 11;
    public const int SegmentSize = 8;
    public const int SegmentsOffset = 24;

    public const int DataPages = RingSlots * MaxSegments;
    public const int MappingPages = 1 + DataPages;
    public const long MappingSize = (long)MappingPages * PageSize;

    /// <summary>Byte offset, in the mapping, of segment <paramref name="segment"/> of slot <paramref name="id"/>'s data page.</summary>
    public static long DataPageOffset(int id, int segment)
    {
        if ((uint)id >= RingSlots)
            throw new ArgumentOutOfRangeException(nameof(id), id, $"ring request id must be below {RingSlots}");
        if ((uint)segment >= MaxSegments)
            throw new ArgumentOutOfRangeException(nameof(segment), segment, $"segment must be below {MaxSegments}");
        return (1L + id * MaxSegments + segment) * PageSize;
    }

    /// <summary>Byte offset of the entry slot that free-running index <paramref name="index"/> names.</summary>
    public static int SlotOffset(uint index) => EntriesOffset + (int)(index & (RingSlots - 1)) * EntrySize;
}

/// <summary>blkif operations (the kernel ring carries read and write; the rest are answered unsupported).</summary>
public enum BlkifOperation : byte
{
    Read = 0,
    Write = 1,
    WriteBarrier = 2,
    FlushDiskCache = 3,
    Discard = 5,
    Indirect = 6,
}

/// <summary>Response status: 0 OK, −1 error, −2 operation not supported.</summary>
public enum BlkifStatus : short
{
    Okay = 0,
    Error = -1,
    NotSupported = -2,
}

/// <summary>The blktap2 control byte at offset 16 of the shared page.</summary>
public enum BlkifRingControl : byte
{
    None = 0,
    Pause = 1,
    Resume = 2,
    Close = 3,
}

/// <summary>A ring entry or control value that breaks the layout; names field and value.</summary>
public sealed class BlkifFormatException(string message) : Exception(message);
