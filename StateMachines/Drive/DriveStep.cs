namespace BlkTapCtrl.StateMachines.Drive;

/// <summary>What the drive function asks the supervisor to do next (reference §1.8 table).</summary>
public enum DriveStep
{
    /// <summary>The channel is at (or counts as being at) the target: run the post-processing.</summary>
    Reached,
    /// <summary>Spawn a worker (or adopt a shared one) and send PID; the drive then waits (EAGAIN).</summary>
    Connect,
    SendOpen,
    SendPause,
    SendResume,
    SendClose,
    SendForceShutdown,
    /// <summary>A request is outstanding (EAGAIN): the response or child exit drives again.</summary>
    InProgress,
    /// <summary>
    /// launched → paused has no entry in the original (§6 item 7): logged; PID's response drives again,
    /// and a channel in pid state then counts as paused.
    /// </summary>
    LaunchedCannotPause,
}

/// <summary>What happens once the target is reached, chosen by the VBD state (§1.8).</summary>
public enum PostProcess
{
    None,
    /// <summary>pausing ⇒ enter paused and write <c>pause-done</c>.</summary>
    CompletePause,
    /// <summary>recycled ⇒ re-probe the backend path (§1.10), then destroy the channel.</summary>
    ReprobeThenDestroy,
    /// <summary>dead ⇒ destroy: unregister watches, close FIFOs (unless shared), free.</summary>
    Destroy,
}

/// <summary>One decision of the drive function.</summary>
public readonly record struct DrivePlan(Channel.ChannelState Target, DriveStep Step, PostProcess PostProcess);
