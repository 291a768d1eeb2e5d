using BlkTapCtrl.StateMachines.Channel;
using BlkTapCtrl.StateMachines.Shutdown;
using BlkTapCtrl.StateMachines.Vbd;

namespace BlkTapCtrl.StateMachines.Drive;

/// <summary>
/// drive_vbd_state (reference §1.8): the VBD and shutdown states choose a target channel state, and the
/// channel's current state chooses the step towards it. Pure, so every cell of the table is testable.
/// </summary>
public static class VbdDriveFunction
{
    /// <summary>DOWN ⇒ closed; UP+unpaused ⇒ running; UP+pausing/paused ⇒ paused; UP+fenced ⇒ closed.</summary>
    public static ChannelState TargetFor(VbdState vbd, ShutdownState shutdown)
    {
        if (shutdown == ShutdownState.Down)
            return ChannelState.Closed;
        return vbd switch
        {
            VbdState.Unpaused => ChannelState.Running,
            VbdState.Pausing or VbdState.Paused => ChannelState.Paused,
            // Fenced, and the not-yet-evaluated state (no request can be honoured before open finished).
            _ => ChannelState.Closed,
        };
    }

    /// <summary>The step from <paramref name="current"/> towards <paramref name="target"/>.</summary>
    public static DriveStep StepTowards(ChannelState current, ChannelState target, bool forceShutdown)
    {
        if (current == target)
            return DriveStep.Reached;
        if (current.IsWaiting())
            return DriveStep.InProgress;
        return target switch
        {
            ChannelState.Running => current switch
            {
                ChannelState.Dead or ChannelState.Closed => DriveStep.Connect,
                ChannelState.Pid => DriveStep.SendOpen,
                ChannelState.Paused => DriveStep.SendResume,
                _ => DriveStep.InProgress, // launched: PID is on its way
            },
            ChannelState.Paused => current switch
            {
                // Pause state survives worker exits: no worker counts as paused, nothing is launched (CA-32254).
                ChannelState.Dead or ChannelState.Closed or ChannelState.Pid => DriveStep.Reached,
                ChannelState.Running => DriveStep.SendPause,
                _ => DriveStep.LaunchedCannotPause,
            },
            ChannelState.Closed => current switch
            {
                ChannelState.Dead => DriveStep.Reached,
                ChannelState.Pid or ChannelState.Running or ChannelState.Paused =>
                    forceShutdown ? DriveStep.SendForceShutdown : DriveStep.SendClose,
                _ => DriveStep.InProgress, // launched: wait for PID_RSP, then close
            },
            _ => throw new ArgumentOutOfRangeException(nameof(target), target, "drive targets are running, paused or closed"),
        };
    }

    /// <summary>Post-processing once the target is reached.</summary>
    public static PostProcess AfterReaching(VbdState vbd) => vbd switch
    {
        VbdState.Pausing => PostProcess.CompletePause,
        VbdState.Recycled => PostProcess.ReprobeThenDestroy,
        VbdState.Dead => PostProcess.Destroy,
        _ => PostProcess.None,
    };

    /// <summary>The whole decision for one drive.</summary>
    public static DrivePlan Plan(ChannelState current, VbdState vbd, ShutdownState shutdown, bool forceShutdown)
    {
        var target = TargetFor(vbd, shutdown);
        var step = StepTowards(current, target, forceShutdown);
        return new DrivePlan(target, step, step == DriveStep.Reached ? AfterReaching(vbd) : PostProcess.None);
    }
}
