using Stateless;

namespace BlkTapCtrl.StateMachines.Channel;

/// <summary>
/// The channel state set of reference §1.7 with the consolidated transitions of §1.9. The machine only
/// records what happened; the supervisor performs the side effects (spawn, send) and fires the trigger
/// once they succeeded. A trigger not permitted in the current state never throws: it is handed to the
/// unhandled callback, which the supervisor turns into a fatal error (vbd broken, tapdisk-error written).
/// </summary>
public sealed class ChannelStateMachine
{
    private readonly StateMachine<ChannelState, ChannelTrigger> _machine;
    private readonly StateMachine<ChannelState, ChannelTrigger>.TriggerWithParameters<bool> _connect;
    private readonly StateMachine<ChannelState, ChannelTrigger>.TriggerWithParameters<bool> _reattach;
    private ChannelState _state;
    private bool _unhandled;

    // Set when the channel adopted a shared worker: it starts in Pid but the worker has not seen our
    // cookie yet, so PID must still be sent before OPEN (§1.5 step 1).
    private bool _adoptedWorkerAwaitsPid;

    public ChannelStateMachine(Action<ChannelState, ChannelTrigger> onUnhandled, ChannelState initial = ChannelState.Dead)
    {
        _state = initial;
        _machine = new StateMachine<ChannelState, ChannelTrigger>(() => _state, s => _state = s);
        _connect = _machine.SetTriggerParameters<bool>(ChannelTrigger.Connect);
        _reattach = _machine.SetTriggerParameters<bool>(ChannelTrigger.Reattach);
        _machine.OnUnhandledTrigger((state, trigger) =>
        {
            _unhandled = true;
            onUnhandled(state, trigger);
        });
        Configure();
    }

    public ChannelState State => _state;

    /// <summary>dead/closed → launched (private worker spawned) or → pid (a shared worker adopted).</summary>
    public bool Connect(bool sharedPeerFound) => Fire(() => _machine.Fire(_connect, sharedPeerFound), ChannelTrigger.Connect);

    /// <summary>dead → running, or → paused: a restarted controller takes back a worker that kept serving.</summary>
    public bool Reattach(bool workerPaused) => Fire(() => _machine.Fire(_reattach, workerPaused), ChannelTrigger.Reattach);

    /// <summary>Fires a trigger; false when it was not permitted (the unhandled callback has run).</summary>
    public bool Fire(ChannelTrigger trigger)
    {
        if (trigger is ChannelTrigger.Connect or ChannelTrigger.Reattach)
            throw new ArgumentException($"{trigger} carries an argument: call {trigger}(bool)", nameof(trigger));
        return Fire(() => _machine.Fire(trigger), trigger);
    }

    public bool CanFire(ChannelTrigger trigger) =>
        trigger switch
        {
            ChannelTrigger.Connect => _machine.CanFire(_connect, false) || _machine.CanFire(_connect, true),
            ChannelTrigger.Reattach => _machine.CanFire(_reattach, false) || _machine.CanFire(_reattach, true),
            _ => _machine.CanFire(trigger),
        };

    public Stateless.Reflection.StateMachineInfo GetInfo() => _machine.GetInfo();

    private bool Fire(Action fire, ChannelTrigger trigger)
    {
        _unhandled = false;
        fire();
        return !_unhandled;
    }

    private void Configure()
    {
        const string noSharedPeer = "no shared peer: spawn a private tapdisk";
        const string sharedPeerFound = "shared mode and a peer with the same driver: reuse its tapdisk";
        const string adoptedAwaitsPid = "adopted shared tapdisk has not been sent PID yet";

        foreach (var resting in new[] { ChannelState.Dead, ChannelState.Closed })
        {
            _machine.Configure(resting)
                .PermitIf(_connect, ChannelState.Launched, shared => !shared, noSharedPeer)
                .PermitIf(_connect, ChannelState.Pid, shared => shared, sharedPeerFound)
                // A fault after the channel already stopped talking changes nothing.
                .Ignore(ChannelTrigger.Fault);
        }
        _machine.Configure(ChannelState.Dead)
            // Late exit of a worker this channel already let go of.
            .Ignore(ChannelTrigger.ChildExited)
            // Only a channel that never talked can take back a running worker; pause-done tells which state it is in.
            .PermitIf(_reattach, ChannelState.Running, paused => !paused, "restarted controller: worker serving, no pause-done")
            .PermitIf(_reattach, ChannelState.Paused, paused => paused, "restarted controller: worker paused, pause-done published");
        _machine.Configure(ChannelState.Closed)
            .Permit(ChannelTrigger.ChildExited, ChannelState.Dead);

        _machine.Configure(ChannelState.Launched)
            .Permit(ChannelTrigger.PidSent, ChannelState.WaitPid);

        _machine.Configure(ChannelState.WaitPid)
            .Permit(ChannelTrigger.PidResponse, ChannelState.Pid);

        _machine.Configure(ChannelState.Pid)
            .OnEntryFrom(_connect, shared => _adoptedWorkerAwaitsPid = shared, "note adopted worker awaits PID")
            .PermitIf(ChannelTrigger.PidSent, ChannelState.WaitPid, () => _adoptedWorkerAwaitsPid, adoptedAwaitsPid)
            .PermitIf(ChannelTrigger.OpenSent, ChannelState.WaitOpen, () => !_adoptedWorkerAwaitsPid, "worker answered PID")
            .Permit(ChannelTrigger.CloseSent, ChannelState.WaitClose);
        _machine.Configure(ChannelState.WaitPid)
            .OnEntry(() => _adoptedWorkerAwaitsPid = false, "PID sent");

        _machine.Configure(ChannelState.WaitOpen)
            .Permit(ChannelTrigger.OpenResponse, ChannelState.Running);

        _machine.Configure(ChannelState.Running)
            .Permit(ChannelTrigger.PauseSent, ChannelState.WaitPause)
            .Permit(ChannelTrigger.CloseSent, ChannelState.WaitClose);

        _machine.Configure(ChannelState.WaitPause)
            .Permit(ChannelTrigger.PauseResponse, ChannelState.Paused);

        _machine.Configure(ChannelState.Paused)
            .Permit(ChannelTrigger.ResumeSent, ChannelState.WaitResume)
            .Permit(ChannelTrigger.CloseSent, ChannelState.WaitClose);

        _machine.Configure(ChannelState.WaitResume)
            .Permit(ChannelTrigger.ResumeResponse, ChannelState.Running);

        _machine.Configure(ChannelState.WaitClose)
            .Permit(ChannelTrigger.CloseResponse, ChannelState.Closed);

        // Any talking state: the worker may die at any moment, and any fault closes the channel (§6).
        foreach (var state in ChannelStates.All.Where(s => s.IsIpcOpen()))
        {
            _machine.Configure(state)
                .Permit(ChannelTrigger.ChildExited, ChannelState.Dead)
                .Permit(ChannelTrigger.Fault, ChannelState.Closed);
        }
    }
}
