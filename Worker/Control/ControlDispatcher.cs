using BlkTapCtrl.Protocol.Control;
using BlkTapCtrl.Worker.Images;
using BlkTapCtrl.Worker.Interop;
using BlkTapCtrl.Worker.Server;
using BlkTapCtrl.Worker.Vbd;

namespace BlkTapCtrl.Worker.Control;

/// <summary>
/// Handles the supervisor's messages by cookie (reference §2): PID creates the VBD, OPEN opens it,
/// PAUSE/RESUME/CLOSE/FORCE_SHUTDOWN drive it, EXIT is ignored. Anything malformed, unknown or out of
/// order gets ERROR (never an exception); after an ERROR for an unknown cookie or type the worker
/// exits if it has no VBD left, like the original.
/// </summary>
public sealed class ControlDispatcher(TapdiskServer server, IControlSender sender) : IVbdControlReplies
{
    private readonly TapdiskServer _server = server;
    private readonly IControlSender _sender = sender;

    /// <summary>Each OPENed VBD's NBD export (set by the process; null in tests that need none).</summary>
    public Frontends.NbdControlExports? NbdExports { get; set; }

    /// <summary>Set once the process sent its single RUNTIME_ERROR for SIGXFSZ.</summary>
    public bool SentXfszError { get; private set; }

    public void Dispatch(in ControlMessage message)
    {
        _server.Log.Write(Logging.WorkerLog.Level.Debug, "tapdisk_ipc_read",
            $"received {ControlMessageTypeNames.LogName(message.Type)} for VBD {message.Cookie}");
        var cookie = message.Cookie;
        if (message.Type == ControlMessageType.Pid)
        {
            if (_server.FindVbd(cookie) != null)
            {
                Error(cookie, Errno.EEXIST, "duplicate cookie");
                return;
            }
            // PID_RSP leaves before the VBD is built (its request slots, the I/O queue's io_uring or AIO context):
            // spawn → PID_RSP is the supervisor's wait, and nothing can reach the VBD before this dispatch returns.
            _sender.Send(ControlMessage.PidResponse(cookie, Environment.ProcessId));
            var created = _server.CreateVbd(cookie);
            created.ControlReplies = this;
            return;
        }
        if (message.Type == ControlMessageType.Exit)
            return;
        var vbd = _server.FindVbd(cookie);
        if (vbd == null || !IsRequest(message.Type))
        {
            Error(cookie, Errno.EINVAL, vbd == null ? "unknown cookie" : $"unexpected message type {(int)message.Type}");
            if (_server.Vbds.Count == 0) _server.Stop();
            return;
        }
        switch (message.Type)
        {
            case ControlMessageType.Open:
                Open(vbd, message);
                break;
            case ControlMessageType.Pause:
                Reply(vbd, vbd.Pause(), "pause");
                break;
            case ControlMessageType.Resume:
            {
                int err = message.Path is { Length: > 0 } path
                    ? vbd.Resume(new VbdOpenParameters(path, (DriverType)message.DriverType,
                        ImageOpenFlagsExtensions.FromControl(message.Flags), message.Storage))
                    : -Errno.EINVAL;
                if (err != 0) Error(cookie, err, "resume");
                else _sender.Send(ControlMessage.Simple(ControlMessageType.ResumeResponse, cookie));
                break;
            }
            case ControlMessageType.Close:
                Reply(vbd, vbd.Close(), "close");
                break;
            case ControlMessageType.ForceShutdown:
                Reply(vbd, vbd.ForceShutdown(), "force shutdown");
                break;
        }
    }

    private static bool IsRequest(ControlMessageType type) => type is ControlMessageType.Open or ControlMessageType.Pause
        or ControlMessageType.Resume or ControlMessageType.Close or ControlMessageType.ForceShutdown;

    private void Open(VirtualBlockDevice vbd, in ControlMessage message)
    {
        if (vbd.IsOpen || vbd.Chain != null || (vbd.Flags & VbdFlags.Paused) != 0)
        {
            Error(vbd.Cookie, Errno.EBUSY, "VBD already open");
            return;
        }
        if (string.IsNullOrEmpty(message.Path))
        {
            Error(vbd.Cookie, Errno.EINVAL, "open without a path");
            return;
        }
        var p = new VbdOpenParameters(message.Path, (DriverType)message.DriverType,
            ImageOpenFlagsExtensions.FromControl(message.Flags), message.Storage);
        int err = vbd.Open(p);
        if (err != 0)
        {
            Error(vbd.Cookie, err, $"open {p.Path}");
            return;
        }
        NbdExports?.Export(vbd, message.DevNum); // listening before OPEN_RSP: the controller then publishes it
        _sender.Send(ControlMessage.OpenResponse(vbd.Cookie, vbd.Sectors, vbd.SectorSize, 0));
    }

    private void Reply(VirtualBlockDevice vbd, int err, string what)
    {
        if (err != 0 && err != -Errno.EAGAIN) Error(vbd.Cookie, err, what);
    }

    /// <summary>Malformed record: ERROR with the cookie it carried, then exit if no VBD is left.</summary>
    public void Malformed(ushort cookie, string why)
    {
        Error(cookie, Errno.EINVAL, why);
        if (_server.Vbds.Count == 0) _server.Stop();
    }

    private void Error(ushort cookie, int errno, string what)
    {
        _server.Log.Error(errno, "tapdisk_ipc_write_error", $"VBD {cookie}: {what}");
        _sender.Send(ControlMessage.Simple(ControlMessageType.Error, cookie));
    }

    public void PauseCompleted(VirtualBlockDevice vbd) => _sender.Send(ControlMessage.Simple(ControlMessageType.PauseResponse, vbd.Cookie));

    public void CloseCompleted(VirtualBlockDevice vbd) => _sender.Send(ControlMessage.Simple(ControlMessageType.CloseResponse, vbd.Cookie));

    /// <summary>SIGXFSZ: one RUNTIME_ERROR per process.</summary>
    public void SendXfszError()
    {
        if (SentXfszError) return;
        SentXfszError = true;
        ushort cookie = _server.Vbds.Count > 0 ? _server.Vbds[0].Cookie : (ushort)0;
        _sender.Send(ControlMessage.RuntimeError(cookie, "received SIGXFSZ, closing queues"));
    }
}
