using BlkTapCtrl.Vhd.Format;

namespace BlkTapCtrl.Vhd.Image;

/// <summary>
/// A cached sector bitmap of one block. <see cref="Committed"/> is what is on disk and what reads use;
/// writes that set bits stage them in <see cref="Shadow"/> (blktap's shadow bitmap), write the shadow,
/// then <see cref="Commit"/> (or <see cref="Rollback"/> on failure). <see cref="Locked"/> keeps it out of
/// eviction while a transaction uses it.
/// </summary>
public sealed class BlockBitmap
{
    private readonly int _sectors;

    public BlockBitmap(uint block, int bitmapBytes, int sectorsPerBlock)
    {
        Block = block;
        Committed = new byte[bitmapBytes];
        Shadow = new byte[bitmapBytes];
        _sectors = sectorsPerBlock;
    }

    public uint Block { get; }
    public byte[] Committed { get; }
    public byte[] Shadow { get; }
    public bool Locked { get; set; }

    public bool IsSet(int sectorInBlock) => SectorBitmap.Test(Committed, sectorInBlock);
    public bool AllSet(int first, int count) => SectorBitmap.RunLength(Committed, first, count) == count && IsSet(first);
    public bool IsFull => SectorBitmap.AllSet(Committed, _sectors);
    public bool IsEmpty => !SectorBitmap.AnySet(Committed, _sectors);

    /// <summary>Stages bits [first, first+count) in the shadow (copying the committed map first).</summary>
    public void StageSectors(int first, int count)
    {
        SectorBitmap.SetRange(Shadow, first, count);
    }

    /// <summary>Starts a transaction: shadow := committed.</summary>
    public void BeginUpdate() => Committed.CopyTo(Shadow, 0);

    public void Commit() => Shadow.CopyTo(Committed, 0);

    public void Rollback() => Committed.CopyTo(Shadow, 0);

    /// <summary>Sets bits directly in the committed map (synchronous writers).</summary>
    public void SetSectors(int first, int count)
    {
        SectorBitmap.SetRange(Committed, first, count);
        SectorBitmap.SetRange(Shadow, first, count);
    }
}
