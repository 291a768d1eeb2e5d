using System.Runtime.InteropServices;
using BlkTapCtrl.Worker.IO;
using BlkTapCtrl.Worker.Vbd;

namespace BlkTapCtrl.Worker.Drivers;

/// <summary>What one I/O of the VHD driver is for: decides what its completion does.</summary>
internal enum VhdIoKind : byte
{
    /// <summary>A present run of a read, straight into the request's buffer.</summary>
    DataRead,
    /// <summary>A write to sectors whose bits are already set (completes the request on its own, or with its CA-27617 pad).</summary>
    PlainWrite,
    /// <summary>A write that belongs to a bitmap transaction (completes when the transaction ends).</summary>
    MemberWrite,
    /// <summary>A block's sector bitmap, for parked requests.</summary>
    BitmapRead,
    /// <summary>Zeros over a new block's alignment gap and bitmap (allocation, before its BAT entry is written).</summary>
    AllocationHead,
    /// <summary>A transaction's shadow bitmap.</summary>
    BitmapWrite,
    /// <summary>One 128-entry BAT sector.</summary>
    BatWrite,
    /// <summary>The CA-27617 redundant bitmap write (a 4 KiB pad ending at the bitmap's end).</summary>
    Pad,
    Flush,
}

/// <summary>
/// One I/O issued by the VHD driver (pooled and reused, so steady-state requests allocate nothing).
/// Metadata I/O uses <see cref="Metadata"/>, a native buffer aligned for O_DIRECT, allocated on the
/// record's first metadata use and kept for its reuse.
/// </summary>
internal sealed unsafe class VhdIo : IoRequest
{
    public VhdIoKind Kind;
    public TapRequest Tap;
    public VhdBlockTransaction? Transaction;
    public uint Block;
    /// <summary>BAT sector index of a <see cref="VhdIoKind.BatWrite"/>.</summary>
    public uint BatSector;
    /// <summary>A plain write and its CA-27617 pad: the request completes when both are done.</summary>
    public VhdIo? Partner;
    public bool Finished;
    public int Result;

    public nint Metadata;
    public int MetadataBytes;

    public Span<byte> MetadataSpan(int length) => new((void*)Metadata, length);

    public void EnsureMetadata(int bytes)
    {
        if (MetadataBytes >= bytes) return;
        FreeMetadata();
        MetadataBytes = (bytes + 4095) & ~4095;
        Metadata = (nint)NativeMemory.AlignedAlloc((nuint)MetadataBytes, 4096);
    }

    public void Clear()
    {
        Tap = default;
        Transaction = null;
        Partner = null;
        Finished = false;
        Result = 0;
        Completion = null;
    }

    public void FreeMetadata()
    {
        if (Metadata == 0) return;
        NativeMemory.AlignedFree((void*)Metadata);
        Metadata = 0;
        MetadataBytes = 0;
    }
}
