using System.Runtime.InteropServices;
using BlkTapCtrl.Controller.Native;

namespace BlkTapCtrl.Controller.Spawning;

/// <summary>
/// The FIFO pair of one worker (reference §1.5 step 3): <c>tapctrlwrite&lt;minor&gt;</c> (we write, tapdisk
/// reads) and <c>tapctrlread&lt;minor&gt;</c> (tapdisk writes, we read) in the run directory, mode 0777, stale
/// ones replaced, opened read-write and non-blocking so neither open nor a closed peer ever blocks or EOFs.
/// The descriptors stay raw and non-blocking: <see cref="WorkerLink"/> reads them when the controller's one
/// <see cref="FifoPoller"/> thread reports them readable and writes them directly (a 280-byte record is atomic).
/// (.NET's pipe streams would block one pool thread per FIFO in a read: hundreds of channels starved the pool.)
/// </summary>
public sealed class ControlFifos : IDisposable
{
    private int _disposed;

    private ControlFifos(string writePath, string readPath, int writeFd, int readFd)
    {
        WritePath = writePath;
        ReadPath = readPath;
        WriteFd = writeFd;
        ReadFd = readFd;
    }

    public string WritePath { get; }
    public string ReadPath { get; }
    /// <summary>tapctrlwrite, O_RDWR|O_NONBLOCK: records to the worker.</summary>
    public int WriteFd { get; }
    /// <summary>tapctrlread, O_RDWR|O_NONBLOCK: records from the worker.</summary>
    public int ReadFd { get; }

    public static ControlFifos Create(string runDir, int minor)
    {
        var (write, read) = Paths(runDir, minor);
        MakeFifo(write);
        MakeFifo(read);
        int writer = -1;
        try
        {
            writer = Open(write);
            int reader = Open(read);
            return new ControlFifos(write, read, writer, reader);
        }
        catch
        {
            if (writer >= 0) Libc.close(writer);
            Unlink(write);
            Unlink(read);
            throw;
        }
    }

    /// <summary>
    /// Reopens the FIFO pair of a worker that outlived an earlier controller (it keeps both open, so they still
    /// exist). Bytes left in the read FIFO were meant for the dead controller and are discarded; a path that
    /// is not a FIFO (it reads end-of-file) is refused.
    /// </summary>
    public static ControlFifos OpenExisting(string runDir, int minor)
    {
        var (write, read) = Paths(runDir, minor);
        int writer = -1, reader = -1;
        try
        {
            writer = Open(write);
            reader = Open(read);
            DiscardPending(reader, read);
            return new ControlFifos(write, read, writer, reader);
        }
        catch
        {
            if (writer >= 0) Libc.close(writer);
            if (reader >= 0) Libc.close(reader);
            throw;
        }
    }

    /// <summary><c>tapctrlwrite&lt;minor&gt;</c> and <c>tapctrlread&lt;minor&gt;</c> in the run directory.</summary>
    public static (string Write, string Read) Paths(string runDir, int minor) =>
        (Path.Combine(runDir, $"tapctrlwrite{minor}"), Path.Combine(runDir, $"tapctrlread{minor}"));

    private static unsafe void DiscardPending(int fd, string path)
    {
        byte* buffer = stackalloc byte[4096];
        while (true)
        {
            nint n = Libc.read(fd, buffer, 4096);
            if (n > 0) continue;
            if (n == 0) throw new IOException($"{path} is not a FIFO");
            int errno = Marshal.GetLastPInvokeError();
            if (errno == Libc.EINTR) continue;
            if (errno == Libc.EAGAIN) return;
            throw new IOException($"read {path}: {Libc.ErrorText(errno)}");
        }
    }

    private static void MakeFifo(string path)
    {
        Unlink(path); // a stale FIFO (or anything else) from an earlier run
        if (Libc.mkfifo(path, 0x1ff) != 0)
            throw new IOException($"mkfifo {path}: {Libc.ErrorText(Marshal.GetLastPInvokeError())}");
        Libc.chmod(path, 0x1ff); // 0777 regardless of umask, as the original
    }

    private static int Open(string path)
    {
        int fd = Libc.open(path, Libc.O_RDWR | Libc.O_NONBLOCK | Libc.O_CLOEXEC, 0);
        if (fd < 0)
            throw new IOException($"open {path}: {Libc.ErrorText(Marshal.GetLastPInvokeError())}");
        return fd;
    }

    private static void Unlink(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    /// <summary>Closes both FIFOs and removes them from the run directory.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        Libc.close(WriteFd);
        Libc.close(ReadFd);
        Unlink(WritePath);
        Unlink(ReadPath);
    }
}
