using BlkTapCtrl.Vhd;
using BlkTapCtrl.Vhd.Image;
using BlkTapCtrl.Worker.Interop;
using BlkTapCtrl.Worker.IO;
using BlkTapCtrl.Worker.Vbd;

namespace BlkTapCtrl.Worker.Drivers;

/// <summary>
/// Writes (reference §4.1): each block's part of a request is classified by
/// <see cref="VhdImage.ClassifyWrite"/>: sectors whose bits are set are written plainly (completing on
/// the data write); others join the block's bitmap transaction (<see cref="VhdBlockTransaction"/>),
/// allocating the block first if it has none, and complete only once bitmap and BAT entry are on disk.
/// A block whose transaction is writing its bitmap takes new bitmap-updating writes only after it:
/// they wait on it and are classified again.
/// <para>CA-27617: a plain write at sector 0 of a batmap-full block also writes a 4 KiB pad ending at the
/// bitmap's end (zeros over the alignment gap, 0xFF over the bitmap) so sequential writes across blocks
/// are contiguous on disk. The original did this for every such block not at first_db; blocks placed by
/// other writers (qemu packs them with no gap) would have had the previous block's tail zeroed, so the
/// pad is only written where the 4 KiB before the bitmap's end are free (<see cref="VhdPadSafety"/>).</para>
/// </summary>
public sealed partial class VhdImageDriver
{
    private const int PadBytes = 4096;
    private readonly Dictionary<uint, VhdBlockTransaction> _transactions = new();
    private readonly Stack<VhdBlockTransaction> _transactionPool = new();
    private readonly VhdBatWriter _bat;
    private readonly HashSet<uint> _staleBitmaps = new();
    private VhdPadSafety? _padSafe;
    private long _fileLength;

    private void QueueWrite(in TapRequest t)
    {
        _written = true;
        long sector = (long)t.Sector;
        int left = t.Sectors;
        int done = 0;
        int spb = _vhd.SectorsPerBlock;
        while (left > 0)
        {
            if (_vhd.IsDynamic)
            {
                uint block = (uint)(sector / spb);
                if (_transactions.TryGetValue(block, out var busy) && busy.Closing)
                {
                    int n = (int)Math.Min(left, spb - sector % spb);
                    var waiting = t.Slice(done, n);
                    // Sectors already written go ahead; the rest waits for the bitmap being written.
                    var plain = _vhd.ClassifyWrite(sector, n);
                    if (plain.Kind == WriteKind.Plain && plain.Count == n) IssuePlainWrite(waiting, plain);
                    else busy.Waiting.Add(waiting);
                    done += n;
                    sector += n;
                    left -= n;
                    continue;
                }
            }
            var w = _vhd.ClassifyWrite(sector, left);
            var part = t.Slice(done, w.Count);
            switch (w.Kind)
            {
                case WriteKind.Plain:
                    IssuePlainWrite(part, w);
                    break;
                case WriteKind.BitmapNeeded:
                    ParkOnBitmap(w.Block, part);
                    break;
                case WriteKind.Allocate:
                {
                    var txn = StartAllocation(w.Block, out int err);
                    if (txn == null) part.Complete(err);
                    else Join(txn, part, w.FirstInBlock);
                    break;
                }
                case WriteKind.BitmapUpdate:
                {
                    if (!_transactions.TryGetValue(w.Block, out var txn)) txn = StartTransaction(w.Block, null);
                    Join(txn, part, w.FirstInBlock);
                    break;
                }
                default:
                    // Locked: allocations are committed in memory at once here, so no other block's
                    // allocation is ever pending; kept for safety (the VBD retries EBUSY at once).
                    part.Complete(-Errno.EBUSY);
                    break;
            }
            done += w.Count;
            sector += w.Count;
            left -= w.Count;
        }
    }

    private void IssuePlainWrite(in TapRequest part, in WriteRun w)
    {
        int fd = DataFd(part.Buffer, part.ByteLength, w.FileOffset);
        if (fd < 0)
        {
            part.Complete(fd);
            return;
        }
        var io = RentIo(VhdIoKind.PlainWrite);
        io.Tap = part;
        io.Set(fd, IoOperation.Write, part.Buffer, part.ByteLength, w.FileOffset, this);
        if (_vhd.IsDynamic && w.FirstInBlock == 0 && _vhd.IsBlockFull(w.Block) && _vhd.BitmapBytes <= PadBytes)
        {
            if (_padSafe != null && _padSafe.IsSafe(w.Block) && _vhd.Bat[w.Block] != _vhd.FirstDataSector)
            {
                var pad = RentIo(VhdIoKind.Pad);
                pad.EnsureMetadata(PadBytes);
                var span = pad.MetadataSpan(PadBytes);
                span[..(PadBytes - _vhd.BitmapBytes)].Clear();
                span[(PadBytes - _vhd.BitmapBytes)..].Fill(0xFF);
                long at = _vhd.BitmapFileOffset(w.Block) + _vhd.BitmapBytes - PadBytes;
                pad.Set(_fd, IoOperation.Write, pad.Metadata, PadBytes, at, this);
                pad.Block = w.Block;
                io.Partner = pad;
                pad.Partner = io;
                GapsWritten++;
                Submit(pad);
            }
            else GapsSkipped++;
        }
        Submit(io);
    }

    /// <summary>A plain write or its pad finished; the request completes when both did (pad errors are only logged).</summary>
    private void OnPlainOrPadDone(VhdIo io, int result)
    {
        io.Finished = true;
        io.Result = result;
        var partner = io.Partner;
        if (partner != null && !partner.Finished) return;
        var data = io.Kind == VhdIoKind.PlainWrite ? io : partner!;
        var pad = io.Kind == VhdIoKind.Pad ? io : partner;
        var tap = data.Tap;
        int dataResult = data.Result;
        if (pad != null)
        {
            if (pad.Result != 0)
                _log.Error(pad.Result, "vhd_redundant_bitmap", $"{Path}: redundant bitmap write of block {pad.Block} failed");
            ReturnIo(pad);
        }
        ReturnIo(data);
        tap.Complete(dataResult);
    }

    // ======================= transactions =======================

    private VhdBlockTransaction StartTransaction(uint block, BlockAllocation? allocation)
    {
        var txn = _transactionPool.Count > 0 ? _transactionPool.Pop() : new VhdBlockTransaction();
        var bitmap = _vhd.TryGetBitmap(block, out var bm) ? bm
            : throw new InvalidOperationException($"bitmap of block {block} is not cached for its transaction");
        txn.Begin(block, bitmap, allocation != null || _bat.NeedsRewrite(block));
        _transactions[block] = txn;
        return txn;
    }

    /// <summary>
    /// Allocates the block (blktap's placement: data on a 4 KiB boundary after the gap) and opens its
    /// transaction. The allocation is committed in memory at once — reads of the block still see an
    /// empty bitmap, so they go to the parent until the transaction commits — which lets writes to other
    /// new blocks allocate in parallel instead of getting EBUSY. On disk the order is kept: zeros over
    /// gap and bitmap, then (with the data) bitmap and BAT entry; the BAT sector written never names a
    /// block whose zeroed bitmap is not yet on disk (<see cref="VhdBatWriter"/>).
    /// </summary>
    private VhdBlockTransaction? StartAllocation(uint block, out int err)
    {
        err = 0;
        BlockAllocation plan;
        try
        {
            plan = _vhd.BeginAllocation(block);
        }
        catch (VhdFormatException e)
        {
            err = -e.Errno;
            _log.Error(e.Errno, "vhd_allocate_block", $"{Path}: {e.Message}");
            return null;
        }
        long blockEnd = plan.NewNextFreeSector * 512;
        if (!_vhd.IsBlockDevice && _fileLength < blockEnd)
        {
            // The file covers the whole block before the BAT can name it (a crash never leaves a BAT
            // entry past the end of the file). ftruncate is a metadata call, not data I/O.
            try { RandomAccess.SetLength(_vhd.Handle, blockEnd); }
            catch (IOException e)
            {
                _vhd.AbortAllocation(plan);
                err = -Errno.ENOSPC;
                _log.Error(Errno.ENOSPC, "vhd_allocate_block", $"{Path}: extending the file to {blockEnd} bytes failed: {e.Message}");
                return null;
            }
            _fileLength = blockEnd;
        }
        long zeroStart = plan.ZeroStartSector * 512;
        int zeroBytes = plan.ZeroSectors * 512;
        _vhd.CommitAllocation(plan);
        _padSafe?.Allocated(block, plan.GapSectors);
        var txn = StartTransaction(block, plan);
        var head = RentIo(VhdIoKind.AllocationHead);
        head.EnsureMetadata(zeroBytes);
        head.MetadataSpan(zeroBytes).Clear();
        head.Transaction = txn;
        head.Set(_fd, IoOperation.Write, head.Metadata, zeroBytes, zeroStart, this);
        txn.Outstanding++;
        Submit(head);
        return txn;
    }

    private void Join(VhdBlockTransaction txn, in TapRequest part, int firstInBlock)
    {
        long offset = _vhd.DataFileOffset(txn.Block, firstInBlock);
        int fd = DataFd(part.Buffer, part.ByteLength, offset);
        if (fd < 0)
        {
            part.Complete(fd);
            // A transaction nobody else joined would never close (and keep its bitmap locked).
            if (txn.Outstanding == 0 && !txn.Closing) Close(txn);
            return;
        }
        txn.Bitmap.StageSectors(firstInBlock, part.Sectors);
        txn.Members.Add(part);
        txn.Outstanding++;
        var io = RentIo(VhdIoKind.MemberWrite);
        io.Transaction = txn;
        io.Set(fd, IoOperation.Write, part.Buffer, part.ByteLength, offset, this);
        Submit(io);
    }

    private void OnTransactionIoDone(VhdBlockTransaction txn, VhdIoKind kind, int result)
    {
        if (result != 0)
        {
            if (txn.Error == 0) txn.Error = result;
            _log.Error(result, "vhd_transaction", $"{Path}: {kind} of block {txn.Block} failed");
        }
        if (--txn.Outstanding > 0) return;
        if (!txn.Closing) Close(txn);
        else Finish(txn);
    }

    /// <summary>Every member's data (and a new block's zeroed head) is written: write the shadow bitmap and the BAT entry.</summary>
    private void Close(VhdBlockTransaction txn)
    {
        txn.Closing = true;
        if (txn.Error != 0)
        {
            Finish(txn);
            return;
        }
        int bytes = _vhd.BitmapBytes;
        var io = RentIo(VhdIoKind.BitmapWrite);
        io.EnsureMetadata(bytes);
        txn.Bitmap.Shadow.AsSpan(0, bytes).CopyTo(io.MetadataSpan(bytes));
        io.Transaction = txn;
        io.Set(_fd, IoOperation.Write, io.Metadata, bytes, _vhd.BitmapFileOffset(txn.Block), this);
        txn.Outstanding++;
        if (txn.NeedsBat)
        {
            txn.Outstanding++;
            _bat.Write(txn);
        }
        Submit(io);
    }

    internal VhdIo RentBatIo(uint sector)
    {
        var io = RentIo(VhdIoKind.BatWrite);
        io.BatSector = sector;
        io.EnsureMetadata(512);
        io.Fd = _fd;
        return io;
    }

    internal void SubmitBatIo(VhdIo io) => Submit(io);

    /// <summary>BAT sector written (called by <see cref="VhdBatWriter"/>).</summary>
    internal void OnBatWritten(VhdBlockTransaction txn, int result)
    {
        if (result != 0) txn.BatFailed = true;
        OnTransactionIoDone(txn, VhdIoKind.BatWrite, result);
    }

    /// <summary>Transaction end: commit (bits become visible, batmap bit if the block filled) or roll back; answer every member.</summary>
    private void Finish(VhdBlockTransaction txn)
    {
        var bm = txn.Bitmap;
        int error = txn.Error;
        if (error == 0)
        {
            bm.Commit();
            _vhd.MarkWritten(txn.Block, 0, 0);
        }
        else bm.Rollback();
        if (txn.NeedsBat && (error != 0 || txn.BatFailed)) _bat.RewriteLater(txn.Block);
        // A failed transaction may leave the on-disk bitmap older than the cached one (for a new block:
        // old bytes under a BAT entry written at close). Keep it cached and locked until a later
        // transaction or the close writes it.
        if (error != 0 || txn.BatFailed) _staleBitmaps.Add(txn.Block);
        else _staleBitmaps.Remove(txn.Block);
        bm.Locked = _staleBitmaps.Contains(txn.Block);
        _transactions.Remove(txn.Block);
        var members = RentList();
        var waiting = RentList();
        members.AddRange(txn.Members);
        waiting.AddRange(txn.Waiting);
        txn.Reset();
        _transactionPool.Push(txn);
        foreach (var m in members) m.Complete(error);
        foreach (var w in waiting) QueueWrite(w);
        ReturnList(members);
        ReturnList(waiting);
    }
}
