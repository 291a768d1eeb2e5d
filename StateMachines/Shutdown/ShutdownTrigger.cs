namespace BlkTapCtrl.StateMachines.Shutdown;

/// <summary>The value found in <c>tapdisk-request</c>.</summary>
public enum ShutdownTrigger
{
    /// <summary><c>start</c></summary>
    Start,
    /// <summary><c>shutdown-normal</c>: clears the force flag.</summary>
    ShutdownNormal,
    /// <summary><c>shutdown-force</c>: sets the force flag (FORCE_SHUTDOWN instead of CLOSE).</summary>
    ShutdownForce,
    /// <summary>The key is absent: down, force flag kept (a device reset after shutdown-force still forces).</summary>
    RequestAbsent,
}
