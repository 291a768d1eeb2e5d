using BlkTapCtrl.Vhd.Format;

namespace BlkTapCtrl.Vhd.Image;

public sealed partial class VhdImage
{
    /// <summary>
    /// Plans the allocation of <paramref name="block"/> exactly as blktap places it (see
    /// <see cref="BlockAllocation"/>). Only one allocation may be pending; others get
    /// <see cref="WriteKind.Locked"/> from <see cref="ClassifyWrite"/>.
    /// </summary>
    public BlockAllocation BeginAllocation(uint block)
    {
        RequireWritableDynamic();
        if (block >= BlockCount)
            throw new VhdFormatException("block", block, $"beyond the disk's {BlockCount} blocks");
        if (Bat[block] != BlockAllocationTable.Unused)
            throw new VhdFormatException($"BAT entry {block}", Bat[block], "block is already allocated", Errnos.EEXIST);
        if (PendingAllocation != null)
            throw new VhdFormatException("pending allocation", PendingAllocation.Block, "another block is being allocated", Errnos.EBUSY);
        var plan = new BlockAllocation(block, NextFreeSector, BitmapSectors, SectorsPerBlock, Header!.TableOffset) { Bat = Bat };
        if (plan.NewNextFreeSector > uint.MaxValue)
            throw new VhdFormatException("next free sector", plan.BitmapSector, "the BAT cannot address beyond 2 TiB of file", Errnos.ENOSPC);
        if (IsBlockDevice && plan.NewNextFreeSector * 512 > FileLength - VhdFooter.Size)
            throw new VhdFormatException("next free sector", plan.NewNextFreeSector, $"device of {FileLength} bytes is full", Errnos.ENOSPC);
        PendingAllocation = plan;
        return plan;
    }

    /// <summary>
    /// The BAT sector is on disk: the block now exists (BAT entry set, next free sector advanced, an
    /// all-clear bitmap cached for it, locked for the caller's bitmap transaction).
    /// </summary>
    public BlockBitmap CommitAllocation(BlockAllocation plan)
    {
        if (!ReferenceEquals(plan, PendingAllocation))
            throw new VhdFormatException("allocation", plan.Block, "is not the pending allocation");
        Bat[plan.Block] = (uint)plan.BitmapSector;
        NextFreeSector = plan.NewNextFreeSector;
        PendingAllocation = null;
        plan.Bat = null;
        return InstallBitmap(plan.Block, BitmapBytes <= Zeros.Length ? Zeros.AsSpan(0, BitmapBytes) : new byte[BitmapBytes]);
    }

    public void AbortAllocation(BlockAllocation plan)
    {
        if (ReferenceEquals(plan, PendingAllocation))
            PendingAllocation = null;
        plan.Bat = null;
    }

    /// <summary>
    /// Records sectors as written in the committed bitmap (after the bitmap write is on disk) and sets
    /// the batmap bit when the block became full. Returns true when the batmap changed (written at
    /// <see cref="FlushMetadata"/>).
    /// </summary>
    public bool MarkWritten(uint block, int firstInBlock, int count)
    {
        var bm = LoadBitmapCached(block);
        bm.SetSectors(firstInBlock, count);
        return UpdateBatmapBit(block, bm);
    }

    private BlockBitmap LoadBitmapCached(uint block) =>
        _bitmaps.TryGetValue(block, out var bm) ? bm : throw new VhdFormatException("bitmap", block, "bitmap of the block is not loaded");

    private bool UpdateBatmapBit(uint block, BlockBitmap bm)
    {
        if (Batmap == null || SectorBitmap.Test(Batmap, (int)block) || !bm.IsFull)
            return false;
        SectorBitmap.Set(Batmap, (int)block);
        BatmapDirty = true;
        return true;
    }

    private void RequireWritableDynamic()
    {
        if (ReadOnly)
            throw new VhdFormatException("open mode", "read-only", $"cannot write to {Path}", Errnos.EPERM);
        if (!IsDynamic)
            throw new VhdFormatException("disk type", Footer.Type, "not a dynamic or differencing disk");
        if (LegacyBitmaps)
            throw new VhdFormatException("creator version", Footer.CreatorVersion, "`tap` 0.1 images with word bitmaps are read-only", Errnos.EOPNOTSUPP);
    }
}
