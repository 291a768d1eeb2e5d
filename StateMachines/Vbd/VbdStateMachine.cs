using Stateless;

namespace BlkTapCtrl.StateMachines.Vbd;

/// <summary>
/// The VBD state set of reference §1.7 with the consolidated VBD transitions of §1.9. Fenced states
/// (broken, dead, recycled) refuse pause and unpause: firing them there reaches the unhandled callback
/// (the original's −EINVAL from <c>enter()</c>) instead of throwing. Dead and recycled are assignments
/// made by the daemon and are reachable from every state.
/// </summary>
public sealed class VbdStateMachine
{
    private readonly StateMachine<VbdState, VbdTrigger> _machine;
    private readonly StateMachine<VbdState, VbdTrigger>.TriggerWithParameters<bool> _unpause;
    private VbdState _state;
    private bool _unhandled;

    public VbdStateMachine(Action<VbdState, VbdTrigger> onUnhandled, VbdState initial = VbdState.Unset)
    {
        _state = initial;
        _machine = new StateMachine<VbdState, VbdTrigger>(() => _state, s => _state = s);
        _unpause = _machine.SetTriggerParameters<bool>(VbdTrigger.UnpauseRequested);
        _machine.OnUnhandledTrigger((state, trigger) =>
        {
            _unhandled = true;
            onUnhandled(state, trigger);
        });
        Configure();
    }

    public VbdState State => _state;
    public bool IsFenced => _state.IsFenced();

    /// <summary>Unpause: permitted only when the refreshed <c>params</c> parsed.</summary>
    public bool Unpause(bool paramsParsed) => Run(() => _machine.Fire(_unpause, paramsParsed));

    public bool Fire(VbdTrigger trigger)
    {
        if (trigger == VbdTrigger.UnpauseRequested)
            throw new ArgumentException("UnpauseRequested carries an argument: call Unpause(paramsParsed)", nameof(trigger));
        return Run(() => _machine.Fire(trigger));
    }

    public Stateless.Reflection.StateMachineInfo GetInfo() => _machine.GetInfo();

    private bool Run(Action fire)
    {
        _unhandled = false;
        fire();
        return !_unhandled;
    }

    private void Configure()
    {
        const string paramsParsed = "params re-read and parsed";

        // Requests the toolstack may make while the VBD is not fenced.
        foreach (var live in new[] { VbdState.Unset, VbdState.Unpaused, VbdState.Pausing, VbdState.Paused })
        {
            var config = _machine.Configure(live);
            if (live == VbdState.Pausing)
                config.PermitReentry(VbdTrigger.PauseRequested);
            else
                config.Permit(VbdTrigger.PauseRequested, VbdState.Pausing);
            if (live == VbdState.Unpaused)
                config.PermitReentryIf(_unpause, ok => ok, paramsParsed);
            else
                config.PermitIf(_unpause, VbdState.Unpaused, ok => ok, paramsParsed);
            config.Permit(VbdTrigger.Fatal, VbdState.Broken)
                .Permit(VbdTrigger.BackendRemoved, VbdState.Dead)
                .Permit(VbdTrigger.Recycle, VbdState.Recycled);
        }

        _machine.Configure(VbdState.Pausing)
            .Permit(VbdTrigger.PauseCompleted, VbdState.Paused);

        // Fenced: a second fatal error changes nothing; removal and recycling are still assignments.
        _machine.Configure(VbdState.Broken)
            .Ignore(VbdTrigger.Fatal)
            .Permit(VbdTrigger.BackendRemoved, VbdState.Dead)
            .Permit(VbdTrigger.Recycle, VbdState.Recycled);
        _machine.Configure(VbdState.Dead)
            .Ignore(VbdTrigger.Fatal)
            .Ignore(VbdTrigger.BackendRemoved)
            // Directory recreated before the old channel was destroyed: re-probe once it is gone.
            .Permit(VbdTrigger.Recycle, VbdState.Recycled);
        _machine.Configure(VbdState.Recycled)
            .Ignore(VbdTrigger.Fatal)
            .Ignore(VbdTrigger.Recycle)
            // Directory removed again before the re-probe: never recreate it, just go away.
            .Permit(VbdTrigger.BackendRemoved, VbdState.Dead);
    }
}
