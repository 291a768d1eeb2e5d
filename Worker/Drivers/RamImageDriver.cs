using System.Runtime.InteropServices;
using BlkTapCtrl.Worker.Images;
using BlkTapCtrl.Worker.Interop;
using BlkTapCtrl.Worker.IO;
using BlkTapCtrl.Worker.Vbd;

namespace BlkTapCtrl.Worker.Drivers;

/// <summary>
/// The <c>ram</c> driver: an image of at most 1,024,000 sectors loaded into memory; reads are served
/// from memory, writes go to memory and through to the file (so nothing is lost at close). Completes
/// synchronously.
/// </summary>
public sealed unsafe class RamImageDriver : IImageDriver
{
    public const ulong MaxSectors = 1_024_000;

    private readonly string _path;
    private readonly int _fd;
    private byte* _data;

    private RamImageDriver(string path, int fd, byte* data, ulong sectors)
    {
        _path = path;
        _fd = fd;
        _data = data;
        Sectors = sectors;
    }

    public ulong Sectors { get; }
    public uint SectorSize => 512;
    public ImageParent? Parent => null;

    public static int Open(string path, ImageOpenFlags flags, DriverContext context, out IImageDriver? driver)
    {
        driver = null;
        bool readOnly = (flags & ImageOpenFlags.ReadOnly) != 0;
        int fd = LibC.open(path, (readOnly ? LibC.O_RDONLY : LibC.O_RDWR) | LibC.O_CLOEXEC, 0);
        if (fd < 0)
        {
            int errno = LibC.LastErrno;
            context.Log.Error(errno, "tdram_open", $"failed to open {path}");
            return -errno;
        }
        long size = LibC.lseek(fd, 0, LibC.SEEK_END);
        ulong sectors = size < 0 ? 0 : (ulong)size / 512;
        if (size < 0 || sectors == 0 || sectors > MaxSectors)
        {
            LibC.close(fd);
            context.Log.Error(Errno.EINVAL, "tdram_open", $"{path}: {sectors} sectors; a ram image holds 1 to {MaxSectors}");
            return -Errno.EINVAL;
        }
        long bytes = (long)sectors * 512;
        var data = (byte*)NativeMemory.Alloc((nuint)bytes);
        long got = SynchronousIoQueue.Execute(fd, IoOperation.Read, (nint)data, bytes, 0);
        if (got != bytes)
        {
            NativeMemory.Free(data);
            LibC.close(fd);
            int err = got < 0 ? (int)got : -Errno.EIO;
            context.Log.Error(err, "tdram_open", $"{path}: reading the image failed");
            return err;
        }
        driver = new RamImageDriver(path, fd, data, sectors);
        return 0;
    }

    public void Queue(in TapRequest request)
    {
        switch (request.Operation)
        {
            case VbdOperation.Read:
                new ReadOnlySpan<byte>(_data + request.ByteOffset, request.ByteLength).CopyTo(request.Data);
                request.Complete(0);
                break;
            case VbdOperation.Write:
                request.Data.CopyTo(new Span<byte>(_data + request.ByteOffset, request.ByteLength));
                long r = SynchronousIoQueue.Execute(_fd, IoOperation.Write, request.Buffer, request.ByteLength, request.ByteOffset);
                request.Complete(r == request.ByteLength ? 0 : r < 0 ? (int)r : -Errno.EIO);
                break;
            default:
                request.Complete(LibC.fdatasync(_fd) == 0 ? 0 : -LibC.LastErrno);
                break;
        }
    }

    public string Describe() => $"ram {_path}: {Sectors} sectors";

    public void Dispose()
    {
        if (_data == null) return;
        NativeMemory.Free(_data);
        _data = null;
        LibC.close(_fd);
    }
}
