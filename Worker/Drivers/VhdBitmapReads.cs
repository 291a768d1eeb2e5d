using BlkTapCtrl.Worker.IO;
using BlkTapCtrl.Worker.Vbd;

namespace BlkTapCtrl.Worker.Drivers;

/// <summary>
/// The bitmap cache's misses (reference §4.1 "not cached ⇒ start bitmap read and park; pending ⇒
/// park"). The bitmaps themselves live in <see cref="Vhd.Image.VhdImage"/>'s cache (bitmaps of blocks
/// in a transaction are locked there and never evicted); this part reads a missing one
/// asynchronously, once, and re-runs the requests parked on it when it arrives (or fails them with the
/// read's error).
/// </summary>
public sealed partial class VhdImageDriver
{
    private readonly Dictionary<uint, List<TapRequest>> _bitmapReads = new();
    private readonly Stack<List<TapRequest>> _listPool = new();

    private List<TapRequest> RentList() => _listPool.Count > 0 ? _listPool.Pop() : new List<TapRequest>(4);

    private void ReturnList(List<TapRequest> list)
    {
        list.Clear();
        _listPool.Push(list);
    }

    private void ParkOnBitmap(uint block, in TapRequest t)
    {
        if (_bitmapReads.TryGetValue(block, out var parked))
        {
            parked.Add(t);
            return;
        }
        parked = RentList();
        parked.Add(t);
        _bitmapReads[block] = parked;
        var io = RentIo(VhdIoKind.BitmapRead);
        io.Block = block;
        io.EnsureMetadata(_vhd.BitmapBytes);
        io.Set(_fd, IoOperation.Read, io.Metadata, _vhd.BitmapBytes, _vhd.BitmapFileOffset(block), this);
        Submit(io);
    }

    private void OnBitmapRead(VhdIo io, int result)
    {
        uint block = io.Block;
        // A bitmap may have been loaded meanwhile (a synchronous block-status query): the cached copy
        // wins, it may already carry bits of a transaction.
        if (result == 0 && !_vhd.TryGetBitmap(block, out _))
            _vhd.InstallBitmap(block, io.MetadataSpan(_vhd.BitmapBytes));
        ReturnIo(io);
        if (!_bitmapReads.Remove(block, out var parked)) return;
        if (result != 0)
            _log.Error(result, "vhd_bitmap_read", $"{Path}: reading the bitmap of block {block} failed");
        foreach (var t in parked)
        {
            if (result != 0) t.Complete(result);
            else if (t.Operation == VbdOperation.Read) QueueRead(t);
            else QueueWrite(t);
        }
        ReturnList(parked);
    }
}
