using System.Buffers.Binary;
using BlkTapCtrl.Protocol.Blkif;

namespace BlkTapCtrl.Worker.Tests.Frontends;

/// <summary>
/// The fuzz test's own reading of a published slot, written from the reference (§3.5/§3.6) and not
/// with the code under test: read (0) or write (1), 1–11 segments each with first ≤ last ≤ 7, id a
/// ring slot, the whole range inside the disk (no u64 wrap-around). Anything else must be refused.
/// </summary>
public readonly record struct RingFuzzOracle(byte Op, ulong Id, ulong Sector, int Sectors, bool Valid, (int First, int Last)[] Segments)
{
    public static RingFuzzOracle Parse(ReadOnlySpan<byte> slot, ulong diskSectors)
    {
        byte op = slot[0];
        int count = slot[1];
        ulong id = BinaryPrimitives.ReadUInt64LittleEndian(slot[8..]);
        ulong sector = BinaryPrimitives.ReadUInt64LittleEndian(slot[16..]);
        bool valid = op <= 1 && count is >= 1 and <= BlkifLayout.MaxSegments && id < BlkifLayout.RingSlots;
        var segments = new (int, int)[valid ? count : 0];
        int sectors = 0;
        for (int i = 0; valid && i < count; i++)
        {
            int first = slot[BlkifLayout.SegmentsOffset + i * BlkifLayout.SegmentSize + 4];
            int last = slot[BlkifLayout.SegmentsOffset + i * BlkifLayout.SegmentSize + 5];
            valid = first <= last && last < BlkifLayout.SectorsPerPage;
            segments[i] = (first, last);
            sectors += last - first + 1;
        }
        valid = valid && (UInt128)sector + (UInt128)sectors <= diskSectors;
        return new RingFuzzOracle(op, id, sector, sectors, valid, segments);
    }

    public bool ValidRead => Valid && Op == 0;
    public bool ValidWrite => Valid && Op == 1;

    /// <summary>The disk sectors this request covers, each with its place in the slot's data pages.</summary>
    public IEnumerable<(long Sector, int Page, int Offset)> SectorMap()
    {
        long s = (long)Sector;
        for (int i = 0; i < Segments.Length; i++)
            for (int k = Segments[i].First; k <= Segments[i].Last; k++)
                yield return (s++, i, k * BlkifLayout.SectorSize);
    }
}
