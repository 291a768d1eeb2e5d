using BlkTapCtrl.Protocol.Blkif;
using BlkTapCtrl.Protocol.Blkif.SharedMemory;
using BlkTapCtrl.Worker.Interop;

namespace BlkTapCtrl.Worker.Frontends;

/// <summary>
/// The kernel's <c>/dev/xen/blktap&lt;minor&gt;</c> (reference §3.6): mapped 1 + 32·11 pages, switched
/// to INTERPOSE mode after mapping; the fd turns readable when blkfront kicks, and KICK_FE tells the
/// kernel our responses are on the ring.
/// </summary>
public sealed unsafe class KernelBlktapRingDevice : IRingDevice
{
    public const nuint IoctlKickFrontend = 1;
    public const nuint IoctlSetMode = 3;
    /// <summary>INTERCEPT_FE | INTERCEPT_BE.</summary>
    public const nuint ModeInterpose = 3;

    private readonly int _fd;
    private readonly string _path;

    private KernelBlktapRingDevice(int fd, byte* mapping, string path)
    {
        _fd = fd;
        Mapping = mapping;
        _path = path;
    }

    public byte* Mapping { get; }
    public int KickFd => _fd;

    /// <summary>Opens and maps the device of <paramref name="minor"/>; returns 0 or −errno with a message.</summary>
    public static int Open(int minor, out KernelBlktapRingDevice? device, out string? error, string directory = "/dev/xen")
    {
        device = null;
        string path = Path.Combine(directory, $"blktap{minor}");
        int fd = LibC.open(path, LibC.O_RDWR | LibC.O_CLOEXEC, 0);
        if (fd < 0)
        {
            int errno = LibC.LastErrno;
            error = $"cannot open the blktap ring device {path}: {Errno.Name(errno)}";
            return -errno;
        }
        nint map = SharedRingNative.mmap(0, (nuint)BlkifLayout.MappingSize, SharedRingNative.PROT_READ | SharedRingNative.PROT_WRITE,
            SharedRingNative.MAP_SHARED, fd, 0);
        if (map == SharedRingNative.MapFailed)
        {
            int errno = LibC.LastErrno;
            LibC.close(fd);
            error = $"cannot map {BlkifLayout.MappingPages} pages of {path}: {Errno.Name(errno)}";
            return -errno;
        }
        if (LibC.ioctl(fd, IoctlSetMode, ModeInterpose) < 0)
        {
            int errno = LibC.LastErrno;
            SharedRingNative.munmap(map, (nuint)BlkifLayout.MappingSize);
            LibC.close(fd);
            error = $"SETMODE INTERPOSE on {path} failed: {Errno.Name(errno)}";
            return -errno;
        }
        error = null;
        device = new KernelBlktapRingDevice(fd, (byte*)map, path);
        return 0;
    }

    // The kernel device reports readiness from the ring itself; there is nothing to drain.
    public void AcknowledgeKick() { }

    public void NotifyFrontend() => LibC.ioctl(_fd, IoctlKickFrontend, 0);

    public string Describe() => $"kernel ring {_path}";

    public void Dispose()
    {
        SharedRingNative.munmap((nint)Mapping, (nuint)BlkifLayout.MappingSize);
        LibC.close(_fd);
    }
}
