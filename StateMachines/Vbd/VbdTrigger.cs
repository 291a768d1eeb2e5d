namespace BlkTapCtrl.StateMachines.Vbd;

public enum VbdTrigger
{
    /// <summary>The <c>pause</c> key exists (at open or on its watch).</summary>
    PauseRequested,
    /// <summary>The <c>pause</c> key is absent; the argument says whether <c>params</c> was re-read and parsed.</summary>
    UnpauseRequested,
    /// <summary>The drive reached the paused target while pausing: <c>pause-done</c> is written.</summary>
    PauseCompleted,
    /// <summary>A fatal error on the channel (tapdisk died, bad message, failed send, …).</summary>
    Fatal,
    /// <summary>The backend directory was removed (assignment: overrides any state).</summary>
    BackendRemoved,
    /// <summary>A probe found the directory again without our <c>tapdisk-uuid</c> (CA-33664).</summary>
    Recycle,
}
