using BlkTapCtrl.Protocol.Control;
using BlkTapCtrl.Worker.Interop;
using BlkTapCtrl.Worker.Scheduling;

namespace BlkTapCtrl.Worker.Control;

/// <summary>
/// The two control FIFOs (reference §2): fixed 280-byte records, partial reads and writes looped.
/// Both FIFOs are opened O_RDWR|O_NONBLOCK so opening never blocks on the supervisor; the read FIFO
/// is a READ event in the loop. Writes wait for room at most 2 s (PID_RSP/OPEN_RSP without limit).
/// </summary>
public sealed unsafe class FifoControlChannel : IControlSender, IDisposable
{
    public const int WriteTimeoutMilliseconds = 2000;

    private readonly EventLoop _loop;
    private readonly byte[] _record = new byte[ControlMessage.Size];
    private readonly byte[] _out = new byte[ControlMessage.Size];
    private int _filled;
    private readonly int _eventId;

    private readonly Logging.WorkerLog _log;

    public FifoControlChannel(EventLoop loop, string readFifo, string writeFifo, Logging.WorkerLog log)
    {
        _loop = loop;
        _log = log;
        ReadFd = OpenFifo(readFifo);
        try { WriteFd = OpenFifo(writeFifo); }
        catch { LibC.close(ReadFd); throw; }
        _eventId = loop.Register(EventMode.Read, ReadFd, 0, static (_, _, s) => ((FifoControlChannel)s!).OnReadable(), this);
    }

    public int ReadFd { get; }
    public int WriteFd { get; }

    /// <summary>Set by the process; receives each complete record.</summary>
    public ControlDispatcher? Dispatcher { get; set; }

    private static int OpenFifo(string path)
    {
        int fd = LibC.open(path, LibC.O_RDWR | LibC.O_NONBLOCK | LibC.O_CLOEXEC, 0);
        if (fd < 0)
            throw new IOException($"cannot open FIFO {path}: {Errno.Name(LibC.LastErrno)}");
        return fd;
    }

    private void OnReadable()
    {
        while (true)
        {
            nint n;
            fixed (byte* p = _record)
                n = LibC.read(ReadFd, p + _filled, ControlMessage.Size - _filled);
            if (n <= 0) return; // EAGAIN: wait for the rest (partial records are kept)
            _filled += (int)n;
            if (_filled < ControlMessage.Size) continue;
            _filled = 0;
            ControlMessage message;
            try
            {
                message = ControlMessage.Read(_record);
            }
            catch (ControlProtocolException e)
            {
                ushort cookie = (ushort)(_record[2] | _record[3] << 8);
                Dispatcher?.Malformed(cookie, e.Message);
                continue;
            }
            Dispatcher?.Dispatch(message);
        }
    }

    /// <summary>Writes one record; a supervisor that is gone or stuck is logged, never a crash.</summary>
    public void Send(in ControlMessage message)
    {
        try
        {
            Write(message);
        }
        catch (Exception e) when (e is IOException or TimeoutException)
        {
            _log.Error(Errno.EIO, "tapdisk_ipc_write", e.Message);
        }
    }

    private void Write(in ControlMessage message)
    {
        message.WriteTo(_out);
        bool unlimited = message.Type is ControlMessageType.PidResponse or ControlMessageType.OpenResponse;
        long deadline = Environment.TickCount64 + WriteTimeoutMilliseconds;
        int written = 0;
        fixed (byte* p = _out)
        {
            while (written < ControlMessage.Size)
            {
                nint n = LibC.write(WriteFd, p + written, ControlMessage.Size - written);
                if (n > 0) { written += (int)n; continue; }
                int errno = LibC.LastErrno;
                if (n < 0 && errno != Errno.EAGAIN && errno != Errno.EINTR)
                    throw new IOException($"writing {ControlMessageTypeNames.LogName(message.Type)} failed: {Errno.Name(errno)}");
                int wait = unlimited ? -1 : (int)Math.Max(0, deadline - Environment.TickCount64);
                if (!unlimited && wait == 0)
                    throw new TimeoutException($"writing {ControlMessageTypeNames.LogName(message.Type)}: supervisor not reading for {WriteTimeoutMilliseconds} ms");
                var pfd = new LibC.PollFd { Fd = WriteFd, Events = LibC.POLLOUT };
                LibC.poll(&pfd, 1, wait);
            }
        }
    }

    public void Dispose()
    {
        _loop.Unregister(_eventId);
        LibC.close(ReadFd);
        LibC.close(WriteFd);
    }
}
