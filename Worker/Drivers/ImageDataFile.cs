using BlkTapCtrl.Worker.Interop;
using BlkTapCtrl.Worker.Logging;

namespace BlkTapCtrl.Worker.Drivers;

/// <summary>
/// The data file of an image driver (aio, vhd): opened O_DIRECT unless buffered I/O was asked for, falling back
/// to buffered when the filesystem refuses O_DIRECT (EINVAL); plus a second, buffered descriptor opened on first
/// need for requests whose memory, length or offset O_DIRECT cannot take. Both are closed on dispose.
/// </summary>
internal sealed class ImageDataFile : IDisposable
{
    /// <summary>What O_DIRECT needs of buffer address, length and offset (the logical sector size).</summary>
    public const int DirectAlignment = 512;

    private readonly string _path;
    private readonly bool _readOnly;
    private int _bufferedFd = -1;

    private ImageDataFile(string path, int fd, bool direct, bool readOnly)
    {
        _path = path;
        Fd = fd;
        IsDirect = direct;
        _readOnly = readOnly;
    }

    /// <summary>The main descriptor: O_DIRECT when <see cref="IsDirect"/>.</summary>
    public int Fd { get; }
    public bool IsDirect { get; }

    /// <summary>Opens the file; 0 and the file, or a negative errno (logged under <paramref name="origin"/>).</summary>
    public static int Open(string path, bool readOnly, bool buffered, string origin, WorkerLog log, out ImageDataFile? file)
    {
        file = null;
        int mode = (readOnly ? LibC.O_RDONLY : LibC.O_RDWR) | LibC.O_CLOEXEC;
        int fd = LibC.open(path, mode | (buffered ? 0 : LibC.O_DIRECT), 0);
        bool direct = fd >= 0 && !buffered;
        if (fd < 0 && LibC.LastErrno == Errno.EINVAL)
        {
            log.Info(origin, $"{path}: O_DIRECT refused, using buffered I/O");
            fd = LibC.open(path, mode, 0);
        }
        if (fd < 0)
        {
            int errno = LibC.LastErrno;
            log.Error(errno, origin, $"failed to open {path}");
            return -errno;
        }
        file = new ImageDataFile(path, fd, direct, readOnly);
        return 0;
    }

    /// <summary>The descriptor for one data I/O: the O_DIRECT one when it can take it, else the buffered one (−errno if that cannot open).</summary>
    public int FdFor(nint buffer, long length, long offset)
    {
        if (!IsDirect || (buffer % DirectAlignment == 0 && length % DirectAlignment == 0 && offset % DirectAlignment == 0))
            return Fd;
        if (_bufferedFd < 0)
        {
            _bufferedFd = LibC.open(_path, (_readOnly ? LibC.O_RDONLY : LibC.O_RDWR) | LibC.O_CLOEXEC, 0);
            if (_bufferedFd < 0) return -LibC.LastErrno;
        }
        return _bufferedFd;
    }

    public void Dispose()
    {
        LibC.close(Fd);
        if (_bufferedFd >= 0) LibC.close(_bufferedFd);
        _bufferedFd = -1;
    }
}
