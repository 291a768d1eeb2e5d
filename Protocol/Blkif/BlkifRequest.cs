using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace BlkTapCtrl.Protocol.Blkif;

/// <summary>One data segment: a page (grant reference; in blktap the page index is the slot's) and a sector range within it.</summary>
public readonly record struct BlkifSegment(uint GrantRef, byte FirstSector, byte LastSector)
{
    /// <summary>Sectors covered, or 0 when the range is empty/invalid (first &gt; last).</summary>
    public int SectorCount => LastSector >= FirstSector ? LastSector - FirstSector + 1 : 0;
}

[InlineArray(BlkifLayout.MaxSegments)]
public struct BlkifSegmentArray
{
    private BlkifSegment _first;
}

/// <summary>
/// A 112-byte blkif request (x86-64): op @0, nr_segments @1, handle @2, id @8, sector @16,
/// 11 segments of {gref u32, first_sect u8, last_sect u8, pad u16} @24. Little-endian (host order on x86).
/// A value type with inline segments so reading it off the ring allocates nothing.
/// </summary>
public struct BlkifRequest
{
    public BlkifOperation Operation;
    public byte SegmentCount;
    public ushort Handle;
    public ulong Id;
    public ulong Sector;
    public BlkifSegmentArray Segments;

    public readonly void WriteTo(Span<byte> destination)
    {
        if (destination.Length < BlkifLayout.RequestSize)
            throw new ArgumentException($"blkif request needs {BlkifLayout.RequestSize} bytes, buffer has {destination.Length}");
        destination = destination[..BlkifLayout.RequestSize];
        destination.Clear();
        destination[0] = (byte)Operation;
        destination[1] = SegmentCount;
        BinaryPrimitives.WriteUInt16LittleEndian(destination[2..], Handle);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], Id);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[16..], Sector);
        for (int i = 0; i < BlkifLayout.MaxSegments; i++)
        {
            var s = destination[(BlkifLayout.SegmentsOffset + i * BlkifLayout.SegmentSize)..];
            BinaryPrimitives.WriteUInt32LittleEndian(s, Segments[i].GrantRef);
            s[4] = Segments[i].FirstSector;
            s[5] = Segments[i].LastSector;
        }
    }

    /// <summary>Copies a request out of its slot (never trusts it: validate with <see cref="Validate"/>).</summary>
    public static BlkifRequest Read(ReadOnlySpan<byte> source)
    {
        if (source.Length < BlkifLayout.RequestSize)
            throw new ArgumentException($"blkif request needs {BlkifLayout.RequestSize} bytes, buffer has {source.Length}");
        var r = new BlkifRequest
        {
            Operation = (BlkifOperation)source[0],
            SegmentCount = source[1],
            Handle = BinaryPrimitives.ReadUInt16LittleEndian(source[2..]),
            Id = BinaryPrimitives.ReadUInt64LittleEndian(source[8..]),
            Sector = BinaryPrimitives.ReadUInt64LittleEndian(source[16..]),
        };
        for (int i = 0; i < BlkifLayout.MaxSegments; i++)
        {
            var s = source[(BlkifLayout.SegmentsOffset + i * BlkifLayout.SegmentSize)..];
            r.Segments[i] = new BlkifSegment(BinaryPrimitives.ReadUInt32LittleEndian(s), s[4], s[5]);
        }
        return r;
    }

    /// <summary>Total sectors of the first <see cref="SegmentCount"/> segments.</summary>
    public readonly int TotalSectors
    {
        get
        {
            int n = 0;
            for (int i = 0; i < SegmentCount && i < BlkifLayout.MaxSegments; i++)
                n += Segments[i].SectorCount;
            return n;
        }
    }

    /// <summary>
    /// The ring check of reference §3.5: read or write, 1–11 segments, each with first ≤ last &lt; 8, and the
    /// whole range inside an image of <paramref name="imageSectors"/> sectors. Returns null when valid, else
    /// a message naming the field and value. (The original checked only the last segment's count, §6.7;
    /// every segment is checked here.)
    /// </summary>
    public readonly string? Validate(ulong imageSectors)
    {
        if (Operation is not (BlkifOperation.Read or BlkifOperation.Write))
            return $"operation {(byte)Operation} is not read (0) or write (1)";
        if (SegmentCount is 0 or > BlkifLayout.MaxSegments)
            return $"nr_segments {SegmentCount} is outside 1..{BlkifLayout.MaxSegments}";
        for (int i = 0; i < SegmentCount; i++)
        {
            var s = Segments[i];
            if (s.LastSector >= BlkifLayout.SectorsPerPage)
                return $"segment {i} last_sect {s.LastSector} is not below {BlkifLayout.SectorsPerPage}";
            if (s.FirstSector > s.LastSector)
                return $"segment {i} first_sect {s.FirstSector} is beyond last_sect {s.LastSector}";
        }
        ulong total = (ulong)TotalSectors;
        if (Sector > imageSectors || total > imageSectors - Sector)
            return $"sectors {Sector}+{total} reach beyond the image's {imageSectors} sectors";
        return null;
    }
}

/// <summary>A 16-byte blkif response: id u64 @0, op u8 @8, status i16 @10.</summary>
public readonly record struct BlkifResponse(ulong Id, BlkifOperation Operation, BlkifStatus Status)
{
    public void WriteTo(Span<byte> destination)
    {
        if (destination.Length < BlkifLayout.ResponseSize)
            throw new ArgumentException($"blkif response needs {BlkifLayout.ResponseSize} bytes, buffer has {destination.Length}");
        destination[..BlkifLayout.ResponseSize].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(destination, Id);
        destination[8] = (byte)Operation;
        BinaryPrimitives.WriteInt16LittleEndian(destination[10..], (short)Status);
    }

    public static BlkifResponse Read(ReadOnlySpan<byte> source)
    {
        if (source.Length < BlkifLayout.ResponseSize)
            throw new ArgumentException($"blkif response needs {BlkifLayout.ResponseSize} bytes, buffer has {source.Length}");
        return new BlkifResponse(BinaryPrimitives.ReadUInt64LittleEndian(source), (BlkifOperation)source[8],
            (BlkifStatus)BinaryPrimitives.ReadInt16LittleEndian(source[10..]));
    }
}
