namespace BlkTapCtrl.StateMachines.Shutdown;

/// <summary>Whether the toolstack wants a tapdisk for the VBD (reference §1.7, <c>tapdisk-request</c>).</summary>
public enum ShutdownState
{
    Up = 1,
    Down = 2,
}
