using System.Runtime.InteropServices;

namespace BlkTapCtrl.Diagnostics.Native;

/// <summary>
/// The few libc calls the syslog client needs. Direct calls (not System.Net.Sockets) because the client must
/// send with MSG_DONTWAIT and see the real errno, and its fd is registered in the worker's own epoll loop,
/// which a managed Socket (with its own async engine) must not share.
/// </summary>
internal static unsafe partial class LibC
{
    public const int AF_UNIX = 1;
    public const int SOCK_DGRAM = 2;
    public const int SOCK_NONBLOCK = 0x800;
    public const int SOCK_CLOEXEC = 0x80000;
    public const int MSG_DONTWAIT = 0x40;
    public const int MSG_NOSIGNAL = 0x4000;
    public const short POLLOUT = 0x4;

    public const int EINTR = 4;
    public const int EAGAIN = 11;
    public const int ENOTCONN = 107;
    public const int ECONNREFUSED = 111;
    public const int ECONNRESET = 104;
    public const int EDESTADDRREQ = 89;

    /// <summary>sun_path of struct sockaddr_un holds 108 bytes including the terminating NUL.</summary>
    public const int SunPathLength = 108;

    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short REvents;
    }

    [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
    public static partial int Socket(int domain, int type, int protocol);

    [LibraryImport("libc", EntryPoint = "connect", SetLastError = true)]
    public static partial int Connect(int fd, byte* address, uint addressLength);

    [LibraryImport("libc", EntryPoint = "send", SetLastError = true)]
    public static partial nint Send(int fd, byte* buffer, nuint length, int flags);

    /// <summary>struct mmsghdr: one datagram of a sendmmsg batch and, on return, its length sent.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct MMsgHdr
    {
        public MsgHdr Header;
        public uint Length;
    }

    /// <summary>sendmmsg(2): several datagrams in one system call; returns how many were sent, or −1.</summary>
    [LibraryImport("libc", EntryPoint = "sendmmsg", SetLastError = true)]
    public static partial int SendMany(int fd, MMsgHdr* messages, uint count, int flags);

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    public static partial int Poll(PollFd* fds, nuint count, int timeoutMs);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    public static int LastErrno => Marshal.GetLastPInvokeError();

    /// <summary>The system's text for an errno ("Connection refused"), for reports.</summary>
    public static string ErrnoText(int errno) => Marshal.GetPInvokeErrorMessage(errno);
}
