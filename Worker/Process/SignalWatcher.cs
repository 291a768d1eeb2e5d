using System.Runtime.InteropServices;
using BlkTapCtrl.Worker.Interop;
using BlkTapCtrl.Worker.Scheduling;

namespace BlkTapCtrl.Worker.Process;

/// <summary>
/// Turns SIGINT/SIGTERM/SIGBUS, SIGXFSZ and SIGUSR1 into loop events (reference §3.1): the runtime's
/// signal thread only records the signal and pokes an eventfd; the handling runs on the loop thread.
/// </summary>
public sealed unsafe class SignalWatcher : IDisposable
{
    public const int SigInt = 2, SigBus = 7, SigUsr1 = 10, SigTerm = 15, SigXfsz = 25;

    private readonly EventLoop _loop;
    private readonly int _eventFd;
    private readonly int _eventId;
    private readonly List<PosixSignalRegistration> _registrations = new();
    private int _pending; // bit per signal number

    public SignalWatcher(EventLoop loop)
    {
        _loop = loop;
        _eventFd = LibC.eventfd(0, LibC.EFD_NONBLOCK | LibC.EFD_CLOEXEC);
        if (_eventFd < 0) throw new IOException($"eventfd failed: {Errno.Name(LibC.LastErrno)}");
        _eventId = loop.Register(EventMode.Read, _eventFd, 0, static (_, _, s) => ((SignalWatcher)s!).Drain(), this);
        UnignoreSigInt();
        foreach (int sig in new[] { SigInt, SigTerm, SigBus, SigXfsz, SigUsr1 })
            _registrations.Add(PosixSignalRegistration.Create((PosixSignal)sig, OnSignal));
    }

    /// <summary>
    /// The original installs its SIGINT handler whatever the parent left (§3.1: INT closes every VBD), but a
    /// process started from a background shell job inherits SIGINT ignored and the runtime then keeps it
    /// ignored. Only an inherited SIG_IGN is put back to the default; a handler already there is kept.
    /// </summary>
    private static void UnignoreSigInt()
    {
        LibC.SigAction old;
        if (LibC.sigaction(SigInt, null, &old) != 0 || old.Handler != LibC.SIG_IGN) return;
        LibC.SigAction dfl = default; // SIG_DFL, empty mask, no flags
        LibC.sigaction(SigInt, &dfl, null);
    }

    /// <summary>Called on the loop thread with the signal number.</summary>
    public Action<int>? Handler { get; set; }

    private void OnSignal(PosixSignalContext context)
    {
        context.Cancel = true;
        int sig = (int)context.Signal;
        Interlocked.Or(ref _pending, 1 << sig);
        ulong one = 1;
        LibC.write(_eventFd, &one, sizeof(ulong));
    }

    private void Drain()
    {
        ulong counter;
        LibC.read(_eventFd, &counter, sizeof(ulong));
        int pending = Interlocked.Exchange(ref _pending, 0);
        for (int sig = 1; sig < 32; sig++)
            if ((pending & (1 << sig)) != 0) Handler?.Invoke(sig);
    }

    public void Dispose()
    {
        foreach (var r in _registrations) r.Dispose();
        _loop.Unregister(_eventId);
        LibC.close(_eventFd);
    }
}
