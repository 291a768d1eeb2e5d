namespace BlkTapCtrl.StateMachines.Channel;

/// <summary>
/// Things that happened to a channel. "…Sent" triggers are fired only after the message really went out
/// (a failed send changes nothing but is a fault); "…Response" triggers are the worker's replies.
/// </summary>
public enum ChannelTrigger
{
    /// <summary>drive → running from dead/closed: spawn a private worker, or adopt a shared one (argument).</summary>
    Connect,
    /// <summary>
    /// A restarted controller found this VBD's worker still running (its own earlier instance spawned it):
    /// dead → running, or → paused when the worker had answered PAUSE (argument).
    /// </summary>
    Reattach,
    PidSent,
    PidResponse,
    OpenSent,
    OpenResponse,
    PauseSent,
    PauseResponse,
    ResumeSent,
    ResumeResponse,
    /// <summary>CLOSE or FORCE_SHUTDOWN went out (which one follows the shutdown force flag).</summary>
    CloseSent,
    CloseResponse,
    /// <summary>The worker process exited or was killed (reaped by the supervisor).</summary>
    ChildExited,
    /// <summary>
    /// ERROR reply, unexpected message, failed/timed-out send or an expired wait deadline. The original left
    /// the channel in its wait state for ever (§6 item 6); here the channel is closed and its worker stopped.
    /// </summary>
    Fault,
}
