using BlkTapCtrl.Vhd.Format;

namespace BlkTapCtrl.Vhd.Image;

/// <summary>
/// blktap's plan for allocating one block, so an asynchronous driver can issue the writes itself:
/// <list type="number">
/// <item>Zero <see cref="ZeroSectors"/> sectors at <see cref="ZeroStartSector"/> (the alignment gap and the
/// bitmap; in preallocate mode also the data, <see cref="ZeroSectorsPreallocate"/>).</item>
/// <item>Write the request's data at <see cref="DataSector"/> + sector-in-block.</item>
/// <item>Write the BAT sector: 512 bytes at <see cref="BatSectorFileOffset"/>, filled by <see cref="FillBatSector"/>.</item>
/// <item>Write the shadow bitmap at <see cref="BitmapSector"/>, then <see cref="VhdImage.CommitAllocation"/>.</item>
/// </list>
/// The data starts on a 4 KiB boundary: the bitmap is placed at next-free + gap where
/// gap = (8 − (next-free + bitmap sectors) mod 8) mod 8.
/// </summary>
public sealed class BlockAllocation
{
    internal BlockAllocation(uint block, long nextFree, int bitmapSectors, int sectorsPerBlock, ulong tableOffset)
    {
        Block = block;
        ZeroStartSector = nextFree;
        GapSectors = (int)((8 - (nextFree + bitmapSectors) % 8) % 8);
        BitmapSector = nextFree + GapSectors;
        DataSector = BitmapSector + bitmapSectors;
        ZeroSectors = GapSectors + bitmapSectors;
        ZeroSectorsPreallocate = ZeroSectors + sectorsPerBlock;
        NewNextFreeSector = DataSector + sectorsPerBlock;
        FirstBatEntry = (uint)(block - block % BlockAllocationTable.EntriesPerSector);
        BatSectorFileOffset = (long)tableOffset + FirstBatEntry * 4L;
    }

    public uint Block { get; }
    public long ZeroStartSector { get; }
    public int GapSectors { get; }
    public int ZeroSectors { get; }
    public int ZeroSectorsPreallocate { get; }
    /// <summary>The new BAT entry value: sector of the block's bitmap.</summary>
    public long BitmapSector { get; }
    public long DataSector { get; }
    public long NewNextFreeSector { get; }
    public uint FirstBatEntry { get; }
    public long BatSectorFileOffset { get; }

    /// <summary>Byte offset of a sector of this block's data.</summary>
    public long DataFileOffset(int sectorInBlock) => (DataSector + sectorInBlock) * 512;

    internal uint[]? Bat { get; set; }

    /// <summary>The 128-entry BAT sector with this block's entry set (512 bytes).</summary>
    public void FillBatSector(Span<byte> sector512)
    {
        var bat = Bat ?? throw new InvalidOperationException("allocation is not active");
        var saved = bat[Block];
        bat[Block] = (uint)BitmapSector;
        try { BlockAllocationTable.Write(bat, sector512[..512], (int)FirstBatEntry); }
        finally { bat[Block] = saved; }
    }
}
