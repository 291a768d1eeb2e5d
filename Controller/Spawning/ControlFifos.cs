using System.IO.Pipes;
using System.Runtime.InteropServices;
using BlkTapCtrl.Controller.Native;
using Microsoft.Win32.SafeHandles;

namespace BlkTapCtrl.Controller.Spawning;

/// <summary>
/// The FIFO pair of one worker (reference §1.5 step 3): <c>tapctrlwrite&lt;minor&gt;</c> (we write, tapdisk
/// reads) and <c>tapctrlread&lt;minor&gt;</c> (tapdisk writes, we read) in the run directory, mode 0777, stale
/// ones replaced, opened read-write and non-blocking so neither open nor a closed peer ever blocks or EOFs.
/// Reads and writes go through the runtime's epoll engine, so hundreds of idle channels cost no thread.
/// </summary>
public sealed class ControlFifos : IDisposable
{
    private ControlFifos(string writePath, string readPath, PipeStream writer, PipeStream reader)
    {
        WritePath = writePath;
        ReadPath = readPath;
        Writer = writer;
        Reader = reader;
    }

    public string WritePath { get; }
    public string ReadPath { get; }
    public PipeStream Writer { get; }
    public PipeStream Reader { get; }

    public static ControlFifos Create(string runDir, int minor)
    {
        var (write, read) = Paths(runDir, minor);
        MakeFifo(write);
        MakeFifo(read);
        PipeStream? writer = null;
        try
        {
            writer = Open(write, PipeDirection.Out);
            var reader = Open(read, PipeDirection.In);
            return new ControlFifos(write, read, writer, reader);
        }
        catch
        {
            writer?.Dispose();
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
        PipeStream? writer = null, reader = null;
        try
        {
            writer = Open(write, PipeDirection.Out);
            reader = Open(read, PipeDirection.In);
            DiscardPending(reader, read);
            return new ControlFifos(write, read, writer, reader);
        }
        catch
        {
            writer?.Dispose();
            reader?.Dispose();
            throw;
        }
    }

    /// <summary><c>tapctrlwrite&lt;minor&gt;</c> and <c>tapctrlread&lt;minor&gt;</c> in the run directory.</summary>
    public static (string Write, string Read) Paths(string runDir, int minor) =>
        (Path.Combine(runDir, $"tapctrlwrite{minor}"), Path.Combine(runDir, $"tapctrlread{minor}"));

    private static unsafe void DiscardPending(PipeStream reader, string path)
    {
        int fd = (int)reader.SafePipeHandle.DangerousGetHandle();
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

    private static PipeStream Open(string path, PipeDirection direction)
    {
        int fd = Libc.open(path, Libc.O_RDWR | Libc.O_NONBLOCK | Libc.O_CLOEXEC, 0);
        if (fd < 0)
            throw new IOException($"open {path}: {Libc.ErrorText(Marshal.GetLastPInvokeError())}");
        return new AnonymousPipeClientStream(direction, new SafePipeHandle(fd, ownsHandle: true));
    }

    private static void Unlink(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    /// <summary>Closes both FIFOs and removes them from the run directory.</summary>
    public void Dispose()
    {
        Writer.Dispose();
        Reader.Dispose();
        Unlink(WritePath);
        Unlink(ReadPath);
    }
}
