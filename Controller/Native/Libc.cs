using System.Runtime.InteropServices;

namespace BlkTapCtrl.Controller.Native;

/// <summary>The few libc calls .NET does not expose: FIFOs, flock, posix_spawn, waitpid, pidfd, poll, priorities, kill.</summary>
internal static unsafe partial class Libc
{
    public const int O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_CREAT = 0x40, O_NONBLOCK = 0x800, O_CLOEXEC = 0x80000;
    public const int LOCK_EX = 2, LOCK_NB = 4;
    public const int WNOHANG = 1;
    public const int PRIO_PROCESS = 0;
    public const int SIGINT = 2, SIGKILL = 9, SIGTERM = 15;
    public const int EINTR = 4, EAGAIN = 11, EWOULDBLOCK = 11, ECHILD = 10, EPERM = 1, EACCES = 13, EEXIST = 17;
    public const short POLLIN = 1;
    public const long SYS_pidfd_open = 434;
    public const int EFD_CLOEXEC = 0x80000, EFD_NONBLOCK = 0x800, ESRCH = 3;
    public const short POSIX_SPAWN_SETSIGMASK = 0x08, POSIX_SPAWN_SETSIGDEF = 0x04;

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int mkfifo(string path, uint mode);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int open(string path, int flags, uint mode);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int flock(int fd, int operation);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int ftruncate(int fd, long length);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint read(int fd, byte* buffer, nint count);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint write(int fd, byte* buffer, nint count);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int chmod(string path, uint mode);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int waitpid(int pid, out int status, int options);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int kill(int pid, int signal);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int setpriority(int which, uint who, int prio);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int getpid();

    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport("libc", SetLastError = true)]
    public static partial int poll(PollFd* fds, nuint count, int timeout);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int eventfd(uint initial, int flags);

    public const short POLLOUT = 4;
    public const int EPOLL_CLOEXEC = 0x80000, EPOLL_CTL_ADD = 1, EPOLL_CTL_DEL = 2;
    public const uint EPOLLIN = 1;

    /// <summary>struct epoll_event as x86-64 lays it out (packed: the 64-bit data follows the 32-bit mask).</summary>
    [StructLayout(LayoutKind.Sequential, Pack = 4)]
    public struct EpollEvent
    {
        public uint Events;
        public ulong Data;
    }

    [LibraryImport("libc", SetLastError = true)]
    public static partial int epoll_create1(int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int epoll_ctl(int epfd, int op, int fd, EpollEvent* ev);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int epoll_wait(int epfd, EpollEvent* events, int maxEvents, int timeout);

    [LibraryImport("libc", SetLastError = true)]
    private static partial long syscall(long number, long a, long b);

    /// <summary>pidfd_open(2): a descriptor that becomes readable when the process exits (any process, not only children).</summary>
    public static int pidfd_open(int pid) => (int)syscall(SYS_pidfd_open, pid, 0);

    [LibraryImport("libc")]
    public static partial int posix_spawnattr_init(void* attr);
    [LibraryImport("libc")]
    public static partial int posix_spawnattr_destroy(void* attr);
    [LibraryImport("libc")]
    public static partial int posix_spawnattr_setflags(void* attr, short flags);
    [LibraryImport("libc")]
    public static partial int posix_spawnattr_setsigmask(void* attr, void* sigset);
    [LibraryImport("libc")]
    public static partial int posix_spawnattr_setsigdefault(void* attr, void* sigset);
    [LibraryImport("libc")]
    public static partial int sigemptyset(void* set);
    [LibraryImport("libc")]
    public static partial int sigfillset(void* set);
    [LibraryImport("libc")]
    public static partial int posix_spawn_file_actions_init(void* actions);
    [LibraryImport("libc")]
    public static partial int posix_spawn_file_actions_destroy(void* actions);
    [LibraryImport("libc")]
    public static partial int posix_spawn_file_actions_addclosefrom_np(void* actions, int from);
    [LibraryImport("libc")]
    public static partial int posix_spawnp(out int pid, byte* file, void* fileActions, void* attr, byte** argv, byte** envp);

    public static bool WIFEXITED(int status) => (status & 0x7f) == 0;
    public static int WEXITSTATUS(int status) => (status >> 8) & 0xff;
    public static bool WIFSIGNALED(int status) => (status & 0x7f) is not 0 and not 0x7f;
    public static int WTERMSIG(int status) => status & 0x7f;

    public static string ErrorText(int errno) => $"{Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})";
}
