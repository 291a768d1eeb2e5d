namespace BlkTapCtrl.StateMachines.Vbd;

/// <summary>
/// What the toolstack wants of the VBD (reference §1.7). <see cref="Unset"/> is the value before the
/// channel's open evaluated the pause key; the others keep the original's numbers.
/// </summary>
public enum VbdState
{
    Unset = 0,
    Unpaused = 1,
    Pausing = 2,
    Paused = 3,
    Broken = 4,
    Dead = 5,
    Recycled = 6,
}

public static class VbdStates
{
    /// <summary>Fenced VBDs take no more pause/unpause/shutdown requests and are only driven towards closed.</summary>
    public static bool IsFenced(this VbdState state) => state is VbdState.Broken or VbdState.Dead or VbdState.Recycled;

    public static IReadOnlyList<VbdState> All { get; } = Enum.GetValues<VbdState>();
}
