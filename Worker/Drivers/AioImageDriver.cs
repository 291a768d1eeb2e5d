using BlkTapCtrl.Worker.Images;
using BlkTapCtrl.Worker.Interop;
using BlkTapCtrl.Worker.IO;
using BlkTapCtrl.Worker.Vbd;

namespace BlkTapCtrl.Worker.Drivers;

/// <summary>
/// The <c>aio</c> driver: a raw file or block device, I/O through the VBD's queue (native AIO or
/// synchronous). Opened O_DIRECT, falling back to buffered when the filesystem refuses it; requests
/// whose buffer, offset or length are not 512-aligned use a buffered fd. 352 request records: when
/// all are busy a request gets −EBUSY and the VBD retries it at once (reference §3.4).
/// </summary>
public sealed class AioImageDriver : IImageDriver, IIoCompletion, IImageAllocation
{
    public const int RequestRecords = 352;
    /// <summary>What the original reports for an empty file (sic).</summary>
    public const ulong EmptyImageSectors = 16836057;

    private readonly string _path;
    private readonly IoQueue _io;
    private readonly AioTap[] _free;
    private int _freeCount;
    private readonly ImageDataFile _file;
    private readonly int _fd;
    private bool _disposed;

    private sealed class AioTap : IoRequest
    {
        public TapRequest Tap;
    }

    private AioImageDriver(string path, ImageDataFile file, ulong sectors, IoQueue io)
    {
        _path = path;
        _file = file;
        _fd = file.Fd;
        Sectors = sectors;
        _io = io;
        _free = new AioTap[RequestRecords];
        for (int i = 0; i < RequestRecords; i++) _free[i] = new AioTap();
        _freeCount = RequestRecords;
    }

    public ulong Sectors { get; }
    public uint SectorSize => 512;
    public ImageParent? Parent => null;
    public bool IsDirect => _file.IsDirect;
    public int FreeRecords => _freeCount;

    public static int Open(string path, ImageOpenFlags flags, DriverContext context, out IImageDriver? driver)
    {
        driver = null;
        int err = ImageDataFile.Open(path, (flags & ImageOpenFlags.ReadOnly) != 0, (flags & ImageOpenFlags.Buffered) != 0,
            "tdaio_open", context.Log, out var file);
        if (err != 0) return err;
        long size = LibC.lseek(file!.Fd, 0, LibC.SEEK_END);
        if (size < 0)
        {
            int errno = LibC.LastErrno;
            file.Dispose();
            return -errno;
        }
        ulong sectors = (ulong)size / 512;
        if (sectors == 0) sectors = EmptyImageSectors;
        driver = new AioImageDriver(path, file, sectors, context.Io);
        return 0;
    }

    public void Queue(in TapRequest request)
    {
        if (_freeCount == 0)
        {
            request.Complete(-Errno.EBUSY);
            return;
        }
        var op = request.Operation switch
        {
            VbdOperation.Read => IoOperation.Read,
            VbdOperation.Write => IoOperation.Write,
            _ => IoOperation.FlushData,
        };
        int fd = PickFd(request);
        if (fd < 0)
        {
            request.Complete(fd);
            return;
        }
        var tap = _free[--_freeCount];
        tap.Tap = request;
        tap.Set(fd, op, request.Buffer, request.ByteLength, request.ByteOffset, this);
        _io.Enqueue(tap);
    }

    private int PickFd(in TapRequest request)
    {
        if (request.Operation == VbdOperation.Flush) return _fd;
        return _file.FdFor(request.Buffer, request.ByteLength, request.ByteOffset);
    }

    public void OnIoCompleted(IoRequest request, int result)
    {
        var tap = (AioTap)request;
        var t = tap.Tap;
        tap.Tap = default;
        _free[_freeCount++] = tap;
        t.Complete(result);
    }

    /// <summary>
    /// Sparse raw files: SEEK_DATA/SEEK_HOLE say where data is; a hole reads as zeroes. Block devices
    /// and filesystems without the seek flags (ENXIO/EINVAL answers) are all data.
    /// </summary>
    public AllocationState QueryAllocation(ulong sector, ulong maxSectors, out ulong runSectors)
    {
        runSectors = maxSectors;
        long start = (long)(sector * 512);
        long end = (long)Math.Min((sector + maxSectors) * 512, Sectors * 512);
        long data = LibC.lseek(_fd, start, LibC.SEEK_DATA);
        if (data < 0)
        {
            // ENXIO: no data at or after start (a hole up to the end of the file).
            if (LibC.LastErrno == Errno.ENXIO) return AllocationState.Zero;
            return AllocationState.Data;
        }
        if (data > start)
        {
            runSectors = (ulong)Math.Min(data - start, end - start) / 512;
            if (runSectors == 0) { runSectors = 1; return AllocationState.Data; }
            return AllocationState.Zero;
        }
        long hole = LibC.lseek(_fd, start, LibC.SEEK_HOLE);
        if (hole < 0) return AllocationState.Data;
        // Round a partial sector at the hole's edge up into the data run.
        runSectors = Math.Max(1, (ulong)((Math.Min(hole, end) - start + 511) / 512));
        return AllocationState.Data;
    }

    public string Describe() => $"aio {_path}: {Sectors} sectors, {(_file.IsDirect ? "O_DIRECT" : "buffered")}, {RequestRecords - _freeCount} busy";

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _file.Dispose();
    }
}
