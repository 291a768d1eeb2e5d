namespace BlkTapCtrl.Vhd.Image;

/// <summary>What a virtual sector range is in one image (or, for a chain, in the whole chain).</summary>
public enum RunKind
{
    /// <summary>The data is in this image's file at <see cref="SectorRun.FileOffset"/>.</summary>
    Present,
    /// <summary>Not written here: read the parent (same virtual sectors).</summary>
    Absent,
    /// <summary>Not written anywhere (no parent, or beyond the parent's size): reads as zeros.</summary>
    Zero,
    /// <summary>The block's sector bitmap is not loaded: read <see cref="VhdImage.BitmapFileOffset"/> and call <see cref="VhdImage.InstallBitmap"/>.</summary>
    BitmapNeeded,
}

/// <summary>
/// A maximal run of sectors that one I/O can serve. Present runs end at block boundaries and bitmap
/// changes; Absent and Zero runs continue across blocks. <see cref="Level"/> is the chain level
/// (0 = leaf) for runs returned by <see cref="VhdChain.MapRun"/>, 0 for a single image.
/// </summary>
public readonly record struct SectorRun(RunKind Kind, long Sector, int Count, long FileOffset, uint Block, int Level = 0)
{
    public long ByteLength => (long)Count * 512;
}

/// <summary>How a write to a range within one block must be done (blktap's write classification).</summary>
public enum WriteKind
{
    /// <summary>Block and every sector's bit present: write the data only.</summary>
    Plain,
    /// <summary>Block allocated, some bits clear: write data, then the updated bitmap before completing.</summary>
    BitmapUpdate,
    /// <summary>Block not allocated: plan an allocation (<see cref="VhdImage.BeginAllocation"/>).</summary>
    Allocate,
    /// <summary>Another block's allocation is in progress (blktap: -EBUSY, retry).</summary>
    Locked,
    /// <summary>The bitmap must be loaded first.</summary>
    BitmapNeeded,
}

/// <summary>A write run inside one block: <see cref="FileOffset"/> is valid for Plain and BitmapUpdate.</summary>
public readonly record struct WriteRun(WriteKind Kind, long Sector, int Count, long FileOffset, uint Block, int FirstInBlock);
