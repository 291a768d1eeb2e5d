using BlkTapCtrl.Protocol.Control;
using BlkTapCtrl.Vhd;
using BlkTapCtrl.Vhd.Image;
using BlkTapCtrl.Worker.Images;
using BlkTapCtrl.Worker.Interop;
using BlkTapCtrl.Worker.IO;
using BlkTapCtrl.Worker.Logging;
using BlkTapCtrl.Worker.Vbd;

namespace BlkTapCtrl.Worker.Drivers;

/// <summary>
/// The <c>vhd</c> driver (reference §4.1): one level of a VHD chain, on the Vhd library's
/// <see cref="VhdImage"/>. Metadata is read synchronously at open and written synchronously at close
/// (BAT, batmap, footer); every data and metadata I/O in between goes through the VBD's
/// <see cref="IoQueue"/>, so the loop never waits on the disk.
/// <list type="bullet">
/// <item>Reads (<c>VhdReadPath.cs</c>): present runs from this file, unwritten runs forwarded to the parent
/// (zeros when there is none), split only where a block or a bitmap run ends.</item>
/// <item>Writes (<c>VhdWritePath.cs</c>, <c>VhdBlockTransaction.cs</c>, <c>VhdBatWriter.cs</c>): blktap's
/// bitmap transactions and block allocation; the CA-27617 redundant bitmap write.</item>
/// <item>Bitmaps not yet cached are read asynchronously; requests needing them wait (<c>VhdBitmapReads.cs</c>).</item>
/// </list>
/// The parent is named from the VHD's parent locator with the UUID the child recorded, so
/// <see cref="ImageChain"/> opens the chain level by level and refuses a parent with another identity.
/// A read-write open overwrites the primary footer with the 0xC7 "opened" marker (the original makes
/// every leaf strict at its first request); an image whose primary footer is unusable opens from the
/// backup copy (CA-29010) and gets both footers rewritten at close.
/// </summary>
public sealed partial class VhdImageDriver : IImageDriver, IImageAllocation, IImageAllocationMap, IImageIdentity, IIoCompletion
{
    private readonly VhdImage _vhd;
    private readonly IoQueue _io;
    private readonly WorkerLog _log;
    private readonly ImageDataFile _file;
    private readonly int _fd;
    private readonly bool _readOnly;
    private readonly Stack<VhdIo> _ioPool = new();
    private int _ioOutstanding;
    private bool _disposed;
    /// <summary>Something was written: BAT, batmap and footer are rewritten at close.</summary>
    private bool _written;
    /// <summary>The 0xC7 marker is on disk instead of the primary footer.</summary>
    private bool _markerWritten;

    private VhdImageDriver(string path, VhdImage vhd, ImageDataFile file, bool readOnly, DriverContext context)
    {
        Path = path;
        _vhd = vhd;
        _file = file;
        _fd = file.Fd;
        _readOnly = readOnly;
        _io = context.Io;
        _log = context.Log;
        Parent = FindParent(vhd);
        _bat = new VhdBatWriter(this, vhd);
        _fileLength = vhd.FileLength;
        _padSafe = readOnly ? null : VhdPadSafety.Compute(vhd);
    }

    public string Path { get; }
    public ulong Sectors => (ulong)_vhd.VirtualSectors;
    public uint SectorSize => 512;
    public ImageParent? Parent { get; }
    public Guid Uuid => _vhd.Footer.Uuid;
    public bool IsDirect => _file.IsDirect;
    /// <summary>The library image (tests and debug).</summary>
    internal VhdImage Image => _vhd;
    public bool OpenedFromBackupFooter { get; private init; }
    /// <summary>CA-27617 pad writes issued / not issued because the gap before the bitmap holds other data.</summary>
    public long GapsWritten { get; private set; }
    public long GapsSkipped { get; private set; }

    public static int Open(string path, ImageOpenFlags flags, DriverContext context, out IImageDriver? driver)
    {
        driver = null;
        bool readOnly = (flags & ImageOpenFlags.ReadOnly) != 0;
        VhdImage vhd;
        try
        {
            vhd = VhdImage.Open(path, readOnly ? VhdOpenFlags.ReadOnly : VhdOpenFlags.None);
        }
        catch (VhdFormatException e)
        {
            context.Log.Error(e.Errno, "vhd_open", $"{path}: {e.Message}");
            return -e.Errno;
        }
        catch (IOException e)
        {
            context.Log.Error(Errno.EIO, "vhd_open", $"{path}: {e.Message}");
            return -Errno.EIO;
        }
        try
        {
            if (!readOnly && vhd.LegacyBitmaps)
                throw new VhdFormatException("creator version", vhd.Footer.CreatorVersion, "`tap` 0.1 images (word bitmaps) can only be opened read-only", Errnos.EOPNOTSUPP);
            if (vhd.IsDifferencing && vhd.ResolveParentPath() == null)
                throw new VhdFormatException("parent locator", vhd.Header!.ParentName, "no MACX/W2KU/W2RU locator names an existing file", Errnos.ENOENT);
            int err = ImageDataFile.Open(path, readOnly, (flags & ImageOpenFlags.Buffered) != 0, "vhd_open", context.Log, out var file);
            if (err != 0)
            {
                vhd.Dispose();
                return err;
            }
            bool fromBackup = vhd.OpenedFromBackupFooter;
            var d = new VhdImageDriver(path, vhd, file!, readOnly, context) { OpenedFromBackupFooter = fromBackup };
            if (fromBackup)
                context.Log.Warn("vhd_open", $"{path}: primary footer unusable ({(vhd.PrimaryFooterIsOpenedMarker ? "0xC7 opened marker" : vhd.PrimaryFooterError?.Message)}), opened from the backup footer; both are rewritten at close");
            if (!readOnly && vhd.IsDynamic)
            {
                vhd.WriteOpenedMarker();
                d._markerWritten = true;
            }
            driver = d;
            return 0;
        }
        catch (VhdFormatException e)
        {
            vhd.Dispose();
            context.Log.Error(e.Errno, "vhd_open", $"{path}: {e.Message}");
            return -e.Errno;
        }
        catch (IOException e)
        {
            vhd.Dispose();
            context.Log.Error(Errno.EIO, "vhd_open", $"{path}: {e.Message}");
            return -Errno.EIO;
        }
    }

    private static ImageParent? FindParent(VhdImage vhd)
    {
        if (!vhd.IsDifferencing) return null;
        string path = vhd.ResolveParentPath()!;
        // A zero parent UUID names a raw parent file (vhd-util snapshot -m).
        return vhd.HasRawParent
            ? new ImageParent(path, DriverType.Aio)
            : new ImageParent(path, DriverType.Vhd, vhd.Header!.ParentUuid);
    }

    public void Queue(in TapRequest request)
    {
        switch (request.Operation)
        {
            case VbdOperation.Read:
                QueueRead(request);
                break;
            case VbdOperation.Write:
                QueueWrite(request);
                break;
            default:
                var io = RentIo(VhdIoKind.Flush);
                io.Tap = request;
                io.Set(_fd, IoOperation.FlushData, 0, 0, 0, this);
                Submit(io);
                break;
        }
    }

    // ======================= I/O records =======================

    private VhdIo RentIo(VhdIoKind kind)
    {
        var io = _ioPool.Count > 0 ? _ioPool.Pop() : new VhdIo();
        io.Kind = kind;
        return io;
    }

    private void ReturnIo(VhdIo io)
    {
        io.Clear();
        _ioPool.Push(io);
    }

    private void Submit(VhdIo io)
    {
        _ioOutstanding++;
        _io.Enqueue(io);
    }

    /// <summary>The fd for a request buffer: O_DIRECT needs aligned memory, others take the buffered fd.</summary>
    private int DataFd(nint buffer, int length, long offset) => _file.FdFor(buffer, length, offset);

    public void OnIoCompleted(IoRequest request, int result)
    {
        var io = (VhdIo)request;
        _ioOutstanding--;
        switch (io.Kind)
        {
            case VhdIoKind.DataRead:
            case VhdIoKind.Flush:
            {
                var tap = io.Tap;
                ReturnIo(io);
                tap.Complete(result);
                break;
            }
            case VhdIoKind.PlainWrite:
            case VhdIoKind.Pad:
                OnPlainOrPadDone(io, result);
                break;
            case VhdIoKind.MemberWrite:
            case VhdIoKind.AllocationHead:
            case VhdIoKind.BitmapWrite:
            {
                var txn = io.Transaction!;
                var kind = io.Kind;
                ReturnIo(io);
                OnTransactionIoDone(txn, kind, result);
                break;
            }
            case VhdIoKind.BatWrite:
            {
                uint sector = io.BatSector;
                ReturnIo(io);
                _bat.OnWritten(sector, result);
                break;
            }
            case VhdIoKind.BitmapRead:
                OnBitmapRead(io, result);
                break;
        }
    }

    // ======================= allocation query (NBD block status) =======================

    /// <summary>
    /// What this level holds at <paramref name="sector"/>: data (a present run), a hole that reads as
    /// zeros (dynamic disk), or the parent's (differencing disk). A bitmap not yet cached is read
    /// synchronously here (512 bytes; block status is rare next to data I/O) unless an asynchronous read
    /// of it is already in flight, in which case the block is reported as data (always a safe answer).
    /// </summary>
    public AllocationState QueryAllocation(ulong sector, ulong maxSectors, out ulong runSectors)
    {
        runSectors = maxSectors;
        long s = (long)sector;
        long count = (long)Math.Min(maxSectors, Sectors - sector);
        if (count <= 0) return AllocationState.Zero;
        while (true)
        {
            var run = _vhd.MapRun(s, count);
            switch (run.Kind)
            {
                case RunKind.Present:
                    runSectors = (ulong)run.Count;
                    return AllocationState.Data;
                case RunKind.BitmapNeeded:
                    if (_bitmapReads.ContainsKey(run.Block))
                    {
                        runSectors = (ulong)run.Count;
                        return AllocationState.Data;
                    }
                    try { _vhd.LoadBitmap(run.Block); }
                    catch (Exception e) when (e is VhdFormatException or IOException)
                    {
                        runSectors = (ulong)run.Count;
                        return AllocationState.Data;
                    }
                    continue;
                default:
                    runSectors = (ulong)run.Count;
                    return _vhd.IsDifferencing ? AllocationState.Parent : AllocationState.Zero;
            }
        }
    }

    public bool TryQueryMapped(ulong sector, ulong maxSectors, out AllocationState state, out ulong runSectors)
    {
        state = AllocationState.Data;
        runSectors = 0;
        long count = (long)Math.Min(maxSectors, Sectors - Math.Min(sector, Sectors));
        if (count <= 0) return false;
        var run = _vhd.MapRun((long)sector, count);
        runSectors = (ulong)run.Count;
        switch (run.Kind)
        {
            case RunKind.Present:
                state = AllocationState.Data;
                return true;
            case RunKind.Absent or RunKind.Zero:
                // The image alone does not know its parent's size (ImageChainAllocation bounds the run by it).
                state = _vhd.IsDifferencing ? AllocationState.Parent : AllocationState.Zero;
                return true;
            default:
                return false; // the bitmap is not cached: only a read can tell
        }
    }

    public string Describe() =>
        $"vhd {Path}: {Sectors} sectors, {(_vhd.IsDifferencing ? "differencing" : _vhd.IsDynamic ? "dynamic" : "fixed")}, " +
        $"{(_file.IsDirect ? "O_DIRECT" : "buffered")}, {_ioOutstanding} I/Os in flight, {_transactions.Count} bitmap transactions, " +
        $"{_bitmapReads.Count} bitmap reads, gaps written/skipped: {GapsWritten}/{GapsSkipped}";

    /// <summary>Close: BAT, batmap and both footers rewritten if anything was written or the footer needs it.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (!_readOnly)
        {
            try
            {
                foreach (uint block in _staleBitmaps)
                    if (_vhd.TryGetBitmap(block, out var bm))
                        RandomAccess.Write(_vhd.Handle, bm.Committed, _vhd.BitmapFileOffset(block));
                if (_written || _markerWritten || OpenedFromBackupFooter)
                    _vhd.FlushMetadata();
            }
            catch (Exception e) when (e is VhdFormatException or IOException)
            {
                _log.Error(Errno.EIO, "vhd_close", $"{Path}: writing the metadata failed: {e.Message}");
            }
            if (_vhd.IsDynamic)
                _log.Info("vhd_close", $"{Path}: gaps written/skipped: {GapsWritten}/{GapsSkipped}");
        }
        _file.Dispose();
        _vhd.Dispose();
        // Records still queued in the backend keep their buffers (only after a forced teardown).
        if (_ioOutstanding == 0)
            foreach (var io in _ioPool) io.FreeMetadata();
    }
}
