using System.Globalization;
using BlkTapCtrl.Controller.Devices;
using BlkTapCtrl.Controller.Params;
using BlkTapCtrl.Controller.Spawning;
using BlkTapCtrl.StateMachines.Channel;
using BlkTapCtrl.StateMachines.Shutdown;
using BlkTapCtrl.StateMachines.Vbd;
using BlkTapCtrl.XenStore.Client;

namespace BlkTapCtrl.Controller.Channels;

/// <summary>
/// One VBD as the supervisor tracks it (reference §1.3–§1.4): its cookie and keys, the three state
/// machines, the parsed params, and the worker currently attached. All of it is touched only from the
/// supervisor's event loop.
/// </summary>
public sealed class TapChannel
{
    public TapChannel(BackendPath backend, ushort cookie,
        Action<TapChannel, ChannelState, ChannelTrigger> onChannelUnhandled,
        Action<TapChannel, string> onRefused)
    {
        Backend = backend;
        Cookie = cookie;
        Keys = new XenStoreKeys(backend.Path);
        Channel = new ChannelStateMachine((s, t) => onChannelUnhandled(this, s, t));
        Vbd = new VbdStateMachine((s, t) => onRefused(this, $"vbd: {t} refused in state {s} (Invalid argument)"));
        Shutdown = new ShutdownStateMachine((s, t) => onRefused(this, $"shutdown: {t} refused in state {s}"));
    }

    public BackendPath Backend { get; }
    public ushort Cookie { get; }
    public string CookieText => Cookie.ToString(CultureInfo.InvariantCulture);
    public XenStoreKeys Keys { get; }
    public ChannelStateMachine Channel { get; }
    public VbdStateMachine Vbd { get; }
    public ShutdownStateMachine Shutdown { get; }

    public VbdParams? Params { get; set; }
    public bool ReadOnly { get; set; }
    public DeviceAllocation? Device { get; set; }

    /// <summary>The worker serving this VBD, or null when none is attached.</summary>
    public WorkerLink? Link { get; set; }

    /// <summary>The pid tapdisk reported in PID_RSP (published as tapdisk-pid).</summary>
    public int ReportedPid { get; set; }

    public XenStoreWatch? ShutdownWatch { get; set; }
    public XenStoreWatch? PauseWatch { get; set; }

    /// <summary>Cancels the deadline of the current wait state; replaced on every transition.</summary>
    public CancellationTokenSource? Deadline { get; set; }
    public ChannelState DeadlineArmedFor { get; set; }

    public bool Destroyed { get; set; }

    public override string ToString() => $"vbd {Backend.DomId}/{Backend.DevId} (cookie {Cookie})";
}
