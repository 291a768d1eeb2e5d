using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using BlkTapCtrl.Controller.Native;

namespace BlkTapCtrl.Controller.Startup;

/// <summary>
/// The pid file (reference §1.1): mode 0600, a non-blocking exclusive lock held for the daemon's life,
/// close-on-exec so workers never inherit it, content <c>"&lt;pid&gt;\n"</c>. A second daemon finds it locked.
/// </summary>
public sealed unsafe class PidFileLock : IDisposable
{
    private int _fd;

    private PidFileLock(int fd, string path)
    {
        _fd = fd;
        Path = path;
    }

    public string Path { get; }

    public enum Outcome { Acquired, HeldByAnother, Failed }

    /// <summary>Takes the lock and writes our pid; says whether another instance holds it, or why it failed.</summary>
    public static Outcome TryAcquire(string path, out PidFileLock? pidLock, out string? problem)
    {
        pidLock = null;
        problem = null;
        var dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
        try
        {
            if (dir != null) Directory.CreateDirectory(dir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            problem = $"creating pid file directory {dir}: {e.Message}";
            return Outcome.Failed;
        }
        int fd = Libc.open(path, Libc.O_RDWR | Libc.O_CREAT | Libc.O_CLOEXEC, 0x180 /* 0600 */);
        if (fd < 0)
        {
            problem = $"opening pid file {path}: {Libc.ErrorText(Marshal.GetLastPInvokeError())}";
            return Outcome.Failed;
        }
        if (Libc.flock(fd, Libc.LOCK_EX | Libc.LOCK_NB) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            Libc.close(fd);
            if (errno == Libc.EWOULDBLOCK)
            {
                problem = $"pid file {path} is locked by another blktapctrl ({ReadPid(path)})";
                return Outcome.HeldByAnother;
            }
            problem = $"locking pid file {path}: {Libc.ErrorText(errno)}";
            return Outcome.Failed;
        }
        var content = Encoding.ASCII.GetBytes(Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n");
        Libc.chmod(path, 0x180);
        if (Libc.ftruncate(fd, 0) != 0)
        {
            problem = $"truncating pid file {path}: {Libc.ErrorText(Marshal.GetLastPInvokeError())}";
            Libc.close(fd);
            return Outcome.Failed;
        }
        fixed (byte* p = content)
        {
            if (Libc.write(fd, p, content.Length) != content.Length)
            {
                problem = $"writing pid file {path}: {Libc.ErrorText(Marshal.GetLastPInvokeError())}";
                Libc.close(fd);
                return Outcome.Failed;
            }
        }
        pidLock = new PidFileLock(fd, path);
        return Outcome.Acquired;
    }

    private static string ReadPid(string path) => "pid " + (ReadContent(path)?.Trim() is { Length: > 0 } pid ? pid : "unknown");

    /// <summary>
    /// The file's content read without .NET's own advisory locking (which would collide with our flock).
    /// </summary>
    public static string? ReadContent(string path)
    {
        int fd = Libc.open(path, Libc.O_RDONLY | Libc.O_CLOEXEC, 0);
        if (fd < 0) return null;
        try
        {
            var buffer = new byte[64];
            fixed (byte* p = buffer)
            {
                nint n = Libc.read(fd, p, buffer.Length);
                return n < 0 ? null : Encoding.ASCII.GetString(buffer, 0, (int)n);
            }
        }
        finally
        {
            Libc.close(fd);
        }
    }

    /// <summary>Unlinks the file and drops the lock (clean stop only).</summary>
    public void Dispose()
    {
        if (_fd < 0) return;
        try { File.Delete(Path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        Libc.close(_fd);
        _fd = -1;
    }
}
