namespace BlkTapCtrl.StateMachines.Channel;

/// <summary>
/// Where the supervisor is in its conversation with one VBD's tapdisk (reference §1.7). The numbers are the
/// original's, so log lines such as "received unexpected message … in state 6" read the same.
/// </summary>
public enum ChannelState
{
    Dead = 1,
    Launched = 2,
    WaitPid = 3,
    Pid = 4,
    WaitOpen = 5,
    Running = 6,
    WaitPause = 7,
    Paused = 8,
    WaitResume = 9,
    WaitClose = 10,
    Closed = 11,
}

public static class ChannelStates
{
    /// <summary>IPC_OPEN: the FIFOs are open and a worker is (believed) attached.</summary>
    public static bool IsIpcOpen(this ChannelState state) => state is not (ChannelState.Dead or ChannelState.Closed);

    /// <summary>IPC_IDLE: no request outstanding, so a new message may be sent.</summary>
    public static bool IsIpcIdle(this ChannelState state) =>
        state is ChannelState.Launched or ChannelState.Pid or ChannelState.Running or ChannelState.Paused;

    /// <summary>A request is outstanding and the channel waits for its response (each has a deadline, §6).</summary>
    public static bool IsWaiting(this ChannelState state) =>
        state is ChannelState.WaitPid or ChannelState.WaitOpen or ChannelState.WaitPause
            or ChannelState.WaitResume or ChannelState.WaitClose;

    public static IReadOnlyList<ChannelState> All { get; } = Enum.GetValues<ChannelState>();
}
