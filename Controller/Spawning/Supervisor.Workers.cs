using BlkTapCtrl.Controller.Channels;
using BlkTapCtrl.Controller.Spawning;
using BlkTapCtrl.StateMachines.Channel;
using BlkTapCtrl.StateMachines.Shutdown;
using Microsoft.Extensions.Logging;

namespace BlkTapCtrl.Controller;

// Child exits mapped to channels (CA-26523), FIFO failures, and the clean stop on SIGTERM.
public sealed partial class Supervisor
{
    private async Task OnChildExitedAsync(ChildExit exit)
    {
        _workersNotYetReaped.Remove(exit.Pid);
        var affected = _channels.Where(c => c.Link?.Pid == exit.Pid).ToList();
        // One line per exit, whatever the order of SIGCHLD and the last message (the channel may have let go of
        // its worker already): operators and tests grep for it. It names the channels still attached, if any.
        if (affected.Count == 0)
            _log.LogInformation("reaped tapdisk pid {Pid} ({Exit})", exit.Pid, exit);
        else
            _log.LogInformation("reaped tapdisk pid {Pid} ({Exit}) of {Channels}", exit.Pid, exit, string.Join(", ", affected));
        foreach (var channel in affected)
        {
            if (channel.Link != null) channel.Link.Exited = true;
            if (!exit.IsClean)
            {
                string text = exit.Signal is { } signal ? $"tapdisk killed by signal {signal}"
                    : exit.ExitStatus is { } status ? $"tapdisk died with status {status}"
                    : "tapdisk vanished (exit status unknown)";
                await ReportFatalAsync(channel, text).ConfigureAwait(false);
            }
            DetachWorker(channel, stopIfLast: false);
            RemoveDeadWorkerExports(channel);
            channel.Channel.Fire(ChannelTrigger.ChildExited);
            ArmDeadline(channel);
            // Unclean: broken ⇒ target closed, no relaunch. Clean while up and unpaused: relaunch.
            await DriveAsync(channel).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// A worker that exits cleanly removes its NBD socket when the VBD closes; one that was killed cannot, and
    /// nobody listens there any more. Its files are unlinked so a dead VBD leaves nothing in the run directory.
    /// </summary>
    private void RemoveDeadWorkerExports(TapChannel channel)
    {
        if (channel.Device is not { } device) return;
        foreach (var path in new[] { device.NbdSocket, device.RingDevice })
        {
            try { File.Delete(path); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _log.LogWarning("{Channel}: removing {Path} of the dead worker: {Error}", channel, path, e.Message);
            }
        }
    }

    private async Task OnLinkFailedAsync(WorkerLink link, string error)
    {
        if (link.IsDisposed) return;
        foreach (var channel in _channels.Where(c => c.Link == link).ToList())
            await FaultAsync(channel, error).ConfigureAwait(false);
    }

    private async Task OnStopRequestedAsync()
    {
        if (_stopping) return;
        _stopping = true;
        _systemd?.Notify(Microsoft.Extensions.Hosting.Systemd.ServiceState.Stopping);
        _log.LogInformation("stopping: closing {Count} VBDs", _channels.Count);
        _ = Task.Delay(_options.StopTimeout).ContinueWith(_ => Post(new StopDeadline()), TaskScheduler.Default);
        foreach (var channel in _channels.ToList())
        {
            // The daemon itself now wants every tapdisk down: CLOSE (or FORCE_SHUTDOWN after shutdown-force).
            channel.Shutdown.Fire(ShutdownTrigger.ShutdownNormal);
            await DriveAsync(channel).ConfigureAwait(false);
        }
    }

    private Task OnStopDeadline()
    {
        if (_stopDeadlinePassed)
        {
            _forceFinish = true; // even SIGKILL did not end them within 2 s: give up waiting
            return Task.CompletedTask;
        }
        _stopDeadlinePassed = true;
        foreach (int pid in _reaper.TrackedPids)
        {
            _log.LogWarning("tapdisk pid {Pid} did not close within {Timeout} s: killed", pid, _options.StopTimeout.TotalSeconds);
            _reaper.Signal(pid, Native.Libc.SIGKILL);
        }
        _ = Task.Delay(WorkerLink.MessageTimeout).ContinueWith(_ => Post(new StopDeadline()), TaskScheduler.Default);
        return Task.CompletedTask;
    }

    private bool _stopDeadlinePassed;
    private bool _forceFinish;

    /// <summary>Stop is complete when no channel talks to a worker and every spawned process is reaped and its exit handled.</summary>
    private bool AllWorkersGone() =>
        _forceFinish
        || (_channels.All(c => c.Link == null || c.Channel.State is ChannelState.Dead or ChannelState.Closed)
            && _workersNotYetReaped.Count == 0);
}
