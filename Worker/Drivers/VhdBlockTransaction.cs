using BlkTapCtrl.Vhd.Image;
using BlkTapCtrl.Worker.Vbd;

namespace BlkTapCtrl.Worker.Drivers;

/// <summary>
/// blktap's bitmap transaction of one block (reference §4.1): writes that set bits join it while it is
/// open (their data is written at once, their bits staged in the shadow bitmap); when the last member's
/// data (and, for a new block, its zeroed gap and bitmap) is on disk it closes and writes the shadow
/// bitmap — and the BAT sector for a new block; then it commits the bits and answers every member.
/// Writes arriving while it closes wait in <see cref="Waiting"/> and are classified again after it.
/// Pooled by the driver.
/// </summary>
internal sealed class VhdBlockTransaction
{
    public uint Block;
    public BlockBitmap Bitmap = null!;
    /// <summary>The BAT sector must be written before the members complete (a new block, or an earlier failed BAT write).</summary>
    public bool NeedsBat;
    public bool BatFailed;
    /// <summary>Bitmap (and BAT) write in flight: no new members.</summary>
    public bool Closing;
    /// <summary>I/Os of the current phase not yet completed.</summary>
    public int Outstanding;
    /// <summary>First error of any of its I/Os: the transaction rolls back and fails every member.</summary>
    public int Error;
    public readonly List<TapRequest> Members = new(8);
    public readonly List<TapRequest> Waiting = new(4);

    public void Begin(uint block, BlockBitmap bitmap, bool needsBat)
    {
        Block = block;
        Bitmap = bitmap;
        NeedsBat = needsBat;
        bitmap.Locked = true;
        bitmap.BeginUpdate();
    }

    public void Reset()
    {
        Bitmap = null!;
        NeedsBat = BatFailed = Closing = false;
        Outstanding = Error = 0;
        Members.Clear();
        Waiting.Clear();
    }
}
