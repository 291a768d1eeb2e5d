using System.Runtime.InteropServices;

namespace BlkTapCtrl.Protocol.Blkif.SharedMemory;

/// <summary>The Linux calls the shared-memory ring transport needs (x86-64 values), for both ends.</summary>
public static unsafe partial class SharedRingNative
{
    private const string Lib = "libc";
    public const int PROT_READ = 1, PROT_WRITE = 2, MAP_SHARED = 1;
    public const int SOL_SOCKET = 1, SCM_RIGHTS = 1, MSG_CMSG_CLOEXEC = 0x40000000, MSG_NOSIGNAL = 0x4000;
    public const int EFD_NONBLOCK = 0x800, EFD_CLOEXEC = 0x80000;
    public const short POLLIN = 1;
    public const int EAGAIN = 11, EINTR = 4;
    public static readonly nint MapFailed = -1;

    [StructLayout(LayoutKind.Sequential)]
    public struct IoVec { public void* Base; public nuint Length; }

    [StructLayout(LayoutKind.Sequential)]
    public struct MsgHdr
    {
        public void* Name; public uint NameLength; public IoVec* Iov; public nuint IovLength;
        public void* Control; public nuint ControlLength; public int Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd { public int Fd; public short Events; public short REvents; }

    /// <summary>cmsghdr (16 bytes on x86-64) followed by three fds: CMSG_LEN = 28, CMSG_SPACE = 32.</summary>
    public const int ControlLengthForThreeFds = 16 + 3 * sizeof(int);
    public const int ControlSpaceForThreeFds = 32;

    [LibraryImport(Lib, SetLastError = true)] public static partial nint mmap(nint addr, nuint length, int prot, int flags, int fd, long offset);
    [LibraryImport(Lib, SetLastError = true)] public static partial int munmap(nint addr, nuint length);
    [LibraryImport(Lib, SetLastError = true)] public static partial int eventfd(uint initval, int flags);
    [LibraryImport(Lib, SetLastError = true)] public static partial nint read(int fd, void* buf, nint count);
    [LibraryImport(Lib, SetLastError = true)] public static partial nint write(int fd, void* buf, nint count);
    [LibraryImport(Lib, SetLastError = true)] public static partial int close(int fd);
    [LibraryImport(Lib, SetLastError = true)] public static partial int poll(PollFd* fds, nuint count, int timeoutMs);
    [LibraryImport(Lib, SetLastError = true)] public static partial nint sendmsg(int fd, MsgHdr* message, int flags);
    [LibraryImport(Lib, SetLastError = true)] public static partial nint recvmsg(int fd, MsgHdr* message, int flags);
    [LibraryImport(Lib, SetLastError = true)] public static partial int ftruncate(int fd, long length);
    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int open(string path, int flags, int mode);
    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int unlink(string path);

    public static int LastErrno => Marshal.GetLastPInvokeError();

    /// <summary>Adds one to an eventfd (a kick).</summary>
    public static void Kick(int eventFd)
    {
        ulong one = 1;
        write(eventFd, &one, sizeof(ulong));
    }

    /// <summary>Empties a non-blocking eventfd; returns how many kicks it held.</summary>
    public static ulong Drain(int eventFd)
    {
        ulong count = 0;
        return read(eventFd, &count, sizeof(ulong)) == sizeof(ulong) ? count : 0;
    }

    /// <summary>Sends <paramref name="payload"/> with <paramref name="fds"/> attached (SCM_RIGHTS).</summary>
    public static int SendWithFds(int socket, ReadOnlySpan<byte> payload, ReadOnlySpan<int> fds)
    {
        if (fds.Length != 3) throw new ArgumentException("exactly three fds are passed", nameof(fds));
        byte* control = stackalloc byte[ControlSpaceForThreeFds];
        new Span<byte>(control, ControlSpaceForThreeFds).Clear();
        *(nuint*)control = ControlLengthForThreeFds;
        *(int*)(control + 8) = SOL_SOCKET;
        *(int*)(control + 12) = SCM_RIGHTS;
        for (int i = 0; i < 3; i++) ((int*)(control + 16))[i] = fds[i];
        fixed (byte* p = payload)
        {
            var iov = new IoVec { Base = p, Length = (nuint)payload.Length };
            var msg = new MsgHdr { Iov = &iov, IovLength = 1, Control = control, ControlLength = ControlSpaceForThreeFds };
            return sendmsg(socket, &msg, MSG_NOSIGNAL) == payload.Length ? 0 : -LastErrno;
        }
    }

    /// <summary>Receives exactly <paramref name="payload"/>.Length bytes and the three fds sent with them.</summary>
    public static void ReceiveWithFds(int socket, Span<byte> payload, Span<int> fds)
    {
        byte* control = stackalloc byte[ControlSpaceForThreeFds];
        fixed (byte* p = payload)
        {
            var iov = new IoVec { Base = p, Length = (nuint)payload.Length };
            var msg = new MsgHdr { Iov = &iov, IovLength = 1, Control = control, ControlLength = ControlSpaceForThreeFds };
            nint n = recvmsg(socket, &msg, MSG_CMSG_CLOEXEC);
            if (n != payload.Length)
                throw new IOException(n < 0 ? $"recvmsg failed: errno {LastErrno}" : $"shared ring hello is {n} bytes, expected {payload.Length}");
            if (msg.ControlLength < ControlLengthForThreeFds || *(int*)(control + 8) != SOL_SOCKET || *(int*)(control + 12) != SCM_RIGHTS
                || *(nuint*)control != ControlLengthForThreeFds)
                throw new IOException("shared ring hello arrived without its three file descriptors");
            for (int i = 0; i < 3; i++) fds[i] = ((int*)(control + 16))[i];
        }
    }
}
