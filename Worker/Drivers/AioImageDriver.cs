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
    private const int DirectAlignment = 512;

    private readonly string _path;
    private readonly IoQueue _io;
    private readonly AioTap[] _free;
    private int _freeCount;
    private readonly int _fd;
    private readonly bool _direct;
    private readonly bool _readOnly;
    private int _bufferedFd = -1;
    private bool _disposed;

    private sealed class AioTap : IoRequest
    {
        public TapRequest Tap;
    }

    private AioImageDriver(string path, int fd, bool direct, bool readOnly, ulong sectors, IoQueue io)
    {
        _path = path;
        _fd = fd;
        _direct = direct;
        _readOnly = readOnly;
        Sectors = sectors;
        _io = io;
        _free = new AioTap[RequestRecords];
        for (int i = 0; i < RequestRecords; i++) _free[i] = new AioTap();
        _freeCount = RequestRecords;
    }

    public ulong Sectors { get; }
    public uint SectorSize => 512;
    public ImageParent? Parent => null;
    public bool IsDirect => _direct;
    public int FreeRecords => _freeCount;

    public static int Open(string path, ImageOpenFlags flags, DriverContext context, out IImageDriver? driver)
    {
        driver = null;
        bool readOnly = (flags & ImageOpenFlags.ReadOnly) != 0;
        int mode = (readOnly ? LibC.O_RDONLY : LibC.O_RDWR) | LibC.O_CLOEXEC;
        bool buffered = (flags & ImageOpenFlags.Buffered) != 0;
        int fd = LibC.open(path, mode | (buffered ? 0 : LibC.O_DIRECT), 0);
        bool direct = fd >= 0 && !buffered;
        if (fd < 0 && LibC.LastErrno == Errno.EINVAL)
        {
            context.Log.Info("tdaio_open", $"{path}: O_DIRECT refused, using buffered I/O");
            fd = LibC.open(path, mode, 0);
        }
        if (fd < 0)
        {
            int errno = LibC.LastErrno;
            context.Log.Error(errno, "tdaio_open", $"failed to open {path}");
            return -errno;
        }
        long size = LibC.lseek(fd, 0, LibC.SEEK_END);
        if (size < 0)
        {
            int errno = LibC.LastErrno;
            LibC.close(fd);
            return -errno;
        }
        ulong sectors = (ulong)size / 512;
        if (sectors == 0) sectors = EmptyImageSectors;
        driver = new AioImageDriver(path, fd, direct, readOnly, sectors, context.Io);
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
        if (!_direct || request.Operation == VbdOperation.Flush) return _fd;
        bool aligned = request.Buffer % DirectAlignment == 0 && request.ByteOffset % DirectAlignment == 0
            && request.ByteLength % DirectAlignment == 0;
        if (aligned) return _fd;
        if (_bufferedFd < 0)
        {
            _bufferedFd = LibC.open(_path, (_readOnly ? LibC.O_RDONLY : LibC.O_RDWR) | LibC.O_CLOEXEC, 0);
            if (_bufferedFd < 0) return -LibC.LastErrno;
        }
        return _bufferedFd;
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

    public string Describe() => $"aio {_path}: {Sectors} sectors, {(_direct ? "O_DIRECT" : "buffered")}, {RequestRecords - _freeCount} busy";

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        LibC.close(_fd);
        if (_bufferedFd >= 0) LibC.close(_bufferedFd);
    }
}
