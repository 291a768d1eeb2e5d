using Stateless;

namespace BlkTapCtrl.StateMachines.Shutdown;

/// <summary>
/// The shutdown state of reference §1.7: up or down plus the force flag. An unknown request value is
/// refused (−EINVAL) and leaves state and flag unchanged.
/// </summary>
public sealed class ShutdownStateMachine
{
    public const string StartRequest = "start";
    public const string ShutdownNormalRequest = "shutdown-normal";
    public const string ShutdownForceRequest = "shutdown-force";

    private readonly StateMachine<ShutdownState, ShutdownTrigger> _machine;
    private ShutdownState _state;
    private bool _unhandled;

    public ShutdownStateMachine(Action<ShutdownState, ShutdownTrigger> onUnhandled, ShutdownState initial = ShutdownState.Down)
    {
        _state = initial;
        _machine = new StateMachine<ShutdownState, ShutdownTrigger>(() => _state, s => _state = s);
        _machine.OnUnhandledTrigger((state, trigger) =>
        {
            _unhandled = true;
            onUnhandled(state, trigger);
        });
        Configure();
    }

    public ShutdownState State => _state;

    /// <summary>Send FORCE_SHUTDOWN rather than CLOSE when driving to closed.</summary>
    public bool Force { get; private set; }

    /// <summary>The trigger for a <c>tapdisk-request</c> value (null = key absent); null for an unknown value.</summary>
    public static ShutdownTrigger? TriggerFor(string? request) => request switch
    {
        null => ShutdownTrigger.RequestAbsent,
        StartRequest => ShutdownTrigger.Start,
        ShutdownNormalRequest => ShutdownTrigger.ShutdownNormal,
        ShutdownForceRequest => ShutdownTrigger.ShutdownForce,
        _ => null,
    };

    /// <summary>Evaluates a request value; false (nothing changed) for an unknown one (−EINVAL).</summary>
    public bool Apply(string? request) => TriggerFor(request) is { } trigger && Fire(trigger);

    public bool Fire(ShutdownTrigger trigger)
    {
        _unhandled = false;
        _machine.Fire(trigger);
        return !_unhandled;
    }

    public Stateless.Reflection.StateMachineInfo GetInfo() => _machine.GetInfo();

    private void Configure()
    {
        _machine.Configure(ShutdownState.Up)
            .Ignore(ShutdownTrigger.Start)
            .Permit(ShutdownTrigger.ShutdownNormal, ShutdownState.Down)
            .Permit(ShutdownTrigger.ShutdownForce, ShutdownState.Down)
            .Permit(ShutdownTrigger.RequestAbsent, ShutdownState.Down);

        _machine.Configure(ShutdownState.Down)
            .OnEntryFrom(ShutdownTrigger.ShutdownNormal, () => Force = false, "clear force flag")
            .OnEntryFrom(ShutdownTrigger.ShutdownForce, () => Force = true, "set force flag")
            .Permit(ShutdownTrigger.Start, ShutdownState.Up)
            .PermitReentry(ShutdownTrigger.ShutdownNormal)
            .PermitReentry(ShutdownTrigger.ShutdownForce)
            .Ignore(ShutdownTrigger.RequestAbsent);
    }
}
