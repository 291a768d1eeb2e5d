using BlkTapCtrl.Controller.Channels;
using BlkTapCtrl.Controller.Spawning;
using BlkTapCtrl.Protocol.Control;
using BlkTapCtrl.StateMachines.Channel;
using BlkTapCtrl.StateMachines.Drive;
using BlkTapCtrl.StateMachines.Vbd;
using BlkTapCtrl.XenStore.Client;
using Microsoft.Extensions.Logging;

namespace BlkTapCtrl.Controller;

// drive_vbd_state (§1.8): the drive function decides, this file carries out the step.
public sealed partial class Supervisor
{
    private async Task DriveAsync(TapChannel channel)
    {
        if (channel.Destroyed) return;
        var plan = VbdDriveFunction.Plan(channel.Channel.State, channel.Vbd.State, channel.Shutdown.State, channel.Shutdown.Force);
        _log.LogDebug("{Channel}: drive {State} → {Target} ({Vbd}, {Shutdown}): {Step}", channel, channel.Channel.State,
            plan.Target, channel.Vbd.State, channel.Shutdown.State, plan.Step);
        switch (plan.Step)
        {
            case DriveStep.Reached:
                await PostProcessAsync(channel, plan.PostProcess).ConfigureAwait(false);
                break;
            case DriveStep.Connect:
                await ConnectAsync(channel).ConfigureAwait(false);
                break;
            case DriveStep.SendOpen:
                await SendOpenAsync(channel).ConfigureAwait(false);
                break;
            case DriveStep.SendPause:
                await SendAsync(channel, ControlMessage.Simple(ControlMessageType.Pause, channel.Cookie), ChannelTrigger.PauseSent).ConfigureAwait(false);
                break;
            case DriveStep.SendResume:
                // RESUME carries the params re-read at unpause, so the worker reopens the (possibly new) image.
                await SendAsync(channel, ControlMessage.Resume(channel.Cookie, channel.Params!.Driver, channel.Params.VdiPath), ChannelTrigger.ResumeSent).ConfigureAwait(false);
                break;
            case DriveStep.SendClose:
                await SendAsync(channel, ControlMessage.Simple(ControlMessageType.Close, channel.Cookie), ChannelTrigger.CloseSent).ConfigureAwait(false);
                break;
            case DriveStep.SendForceShutdown:
                await SendAsync(channel, ControlMessage.Simple(ControlMessageType.ForceShutdown, channel.Cookie), ChannelTrigger.CloseSent).ConfigureAwait(false);
                break;
            case DriveStep.LaunchedCannotPause:
                _log.LogWarning("{Channel}: cannot pause a just-launched tapdisk; pausing once it answers PID", channel);
                break;
            case DriveStep.InProgress:
                break;
        }
    }

    private async Task PostProcessAsync(TapChannel channel, PostProcess post)
    {
        switch (post)
        {
            case PostProcess.CompletePause:
                channel.Vbd.Fire(VbdTrigger.PauseCompleted);
                await WriteGuardedAsync(channel, channel.Keys.PauseDone, "").ConfigureAwait(false);
                _log.LogInformation("{Channel}: paused", channel);
                break;
            case PostProcess.ReprobeThenDestroy:
                await ReprobeAsync(channel).ConfigureAwait(false);
                await DestroyAsync(channel).ConfigureAwait(false);
                break;
            case PostProcess.Destroy:
                await DestroyAsync(channel).ConfigureAwait(false);
                break;
        }
    }

    private async Task ConnectAsync(TapChannel channel)
    {
        try
        {
            channel.Device ??= _devices.Allocate(channel.Backend.DomId, channel.Backend.DevId);
            var peer = await FindSharedPeerAsync(channel).ConfigureAwait(false);
            if (peer != null)
            {
                channel.Link = peer;
                peer.Cookies.Add(channel.Cookie);
                channel.Channel.Connect(sharedPeerFound: true);
            }
            else
            {
                var fifos = ControlFifos.Create(_options.RunDir, channel.Device.Minor);
                int pid;
                try
                {
                    pid = _launcher.Spawn(fifos);
                }
                catch
                {
                    fifos.Dispose();
                    throw;
                }
                var link = new WorkerLink(fifos, pid, channel.Device.Minor);
                link.Cookies.Add(channel.Cookie);
                channel.Link = link;
                _log.LogInformation("{Channel}: spawned {Program} pid {Pid} on {Write} / {Read}", channel, _launcher.Program, pid, fifos.WritePath, fifos.ReadPath);
                _workersNotYetReaped.Add(pid);
                _reaper.Track(pid);
                link.Start(_fifoPoller, (l, m) => Post(new MessageArrived(l, m)), (l, error) => Post(new LinkFailed(l, error)));
                channel.Channel.Connect(sharedPeerFound: false);
            }
            ArmDeadline(channel);
        }
        catch (Exception e) when (e is IOException or XenStoreException)
        {
            await ReportFatalAsync(channel, $"failed connect: {e.Message}").ConfigureAwait(false);
            return;
        }
        await SendAsync(channel, ControlMessage.Simple(ControlMessageType.Pid, channel.Cookie), ChannelTrigger.PidSent).ConfigureAwait(false);
    }

    /// <summary>Shared mode (share-tapdisks exists): a live worker of another channel with the same driver.</summary>
    private async Task<WorkerLink?> FindSharedPeerAsync(TapChannel channel)
    {
        if (!await Xs.ExistsAsync(XenStoreKeys.ShareTapdisks).ConfigureAwait(false))
            return null;
        return _channels.FirstOrDefault(c => c != channel && c.Link is { Exited: false, IsDisposed: false }
                                             && c.Params?.Driver == channel.Params?.Driver && c.Channel.State.IsIpcOpen())?.Link;
    }

    private async Task SendOpenAsync(TapChannel channel)
    {
        var flags = channel.ReadOnly ? ControlOpenFlags.ReadOnly : ControlOpenFlags.None;
        if (await Xs.ExistsAsync(XenStoreKeys.ShareTapdisks).ConfigureAwait(false)) flags |= ControlOpenFlags.Shared;
        if (await Xs.ExistsAsync(XenStoreKeys.AddCache).ConfigureAwait(false)) flags |= ControlOpenFlags.AddCache;
        if (await Xs.ExistsAsync(XenStoreKeys.VhdIndex).ConfigureAwait(false)) flags |= ControlOpenFlags.VhdIndex;
        if (await Xs.ExistsAsync(XenStoreKeys.LogDirty).ConfigureAwait(false)) flags |= ControlOpenFlags.LogDirty;
        var p = channel.Params!;
        var open = ControlMessage.Open(channel.Cookie, p.Driver, p.VdiPath, flags, p.Storage,
            (uint)channel.Device!.Minor, (uint)channel.Backend.DomId);
        await SendAsync(channel, open, ChannelTrigger.OpenSent).ConfigureAwait(false);
    }

    /// <summary>
    /// Sends within 2 s; only then does the state change. A failed send is fatal and, unlike the original
    /// (§6 item 6), closes the channel instead of leaving it waiting for an answer that cannot come.
    /// </summary>
    private async Task SendAsync(TapChannel channel, ControlMessage message, ChannelTrigger sent)
    {
        if (channel.Link is not { } link)
        {
            await FaultAsync(channel, $"sending message: no tapdisk attached in state {(int)channel.Channel.State}").ConfigureAwait(false);
            return;
        }
        try
        {
            await link.SendAsync(message).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ControlProtocolException or ObjectDisposedException)
        {
            await FaultAsync(channel, $"sending message: {e.Message}").ConfigureAwait(false);
            return;
        }
        _log.LogDebug("{Channel}: sent {Message}", channel, ControlMessageTypeNames.LogName(message.Type));
        if (channel.Channel.Fire(sent))
            ArmDeadline(channel);
    }

    /// <summary>
    /// Re-probe (§1.10, CA-33664): in one transaction, if the backend directory still exists write "" to it,
    /// which fires the backend watch again and yields a new channel with a new cookie. If it is gone,
    /// abort: recreating it would make a spurious start fail. (The snapshot's uuid check here always
    /// aborted — §6 item 3; the path-existence test is used.)
    /// </summary>
    private async Task ReprobeAsync(TapChannel channel)
    {
        try
        {
            var (committed, _) = await Xs.RunInTransactionAsync(async tx =>
            {
                if (await tx.TryReadAsync(channel.Keys.Backend).ConfigureAwait(false) == null)
                {
                    await tx.AbortAsync().ConfigureAwait(false);
                    return false;
                }
                await tx.WriteAsync(channel.Keys.Backend, "").ConfigureAwait(false);
                return true;
            }).ConfigureAwait(false);
            _log.LogInformation("{Channel}: re-probe {Outcome}", channel, committed ? "kicked" : "skipped: backend gone");
        }
        catch (XenStoreException e)
        {
            _log.LogError("{Channel}: re-probe failed: {Error}", channel, e.Message);
        }
    }

    /// <summary>Unregister watches, close (and unlink) the FIFOs unless another channel shares them, free.</summary>
    private async Task DestroyAsync(TapChannel channel)
    {
        if (channel.Destroyed) return;
        channel.Destroyed = true;
        channel.Deadline?.Cancel();
        _channels.Remove(channel);
        await UnwatchAsync(channel).ConfigureAwait(false);
        DetachWorker(channel, stopIfLast: false);
        if (channel.Device != null)
        {
            _devices.Release(channel.Device);
            channel.Device = null;
        }
        _log.LogInformation("{Channel}: destroyed", channel);
    }

    /// <summary>
    /// Lets go of the channel's worker: its cookie leaves the link; the last channel closes the FIFOs and,
    /// with <paramref name="stopIfLast"/>, asks the process to stop (SIGINT: close every VBD and exit), with
    /// SIGKILL after 2 s if it does not. The reaper still collects the exit.
    /// </summary>
    private void DetachWorker(TapChannel channel, bool stopIfLast)
    {
        if (channel.Link is not { } link) return;
        channel.Link = null;
        link.Cookies.Remove(channel.Cookie);
        if (link.Cookies.Count > 0 && _channels.Any(c => c.Link == link)) return;
        link.Dispose();
        if (stopIfLast && !link.Exited && _reaper.Signal(link.Pid, Native.Libc.SIGINT))
        {
            _log.LogWarning("{Channel}: stopping tapdisk pid {Pid}", channel, link.Pid);
            _ = Task.Delay(WorkerLink.MessageTimeout).ContinueWith(_ => Post(new KillEscalation(link.Pid)), TaskScheduler.Default);
        }
    }

    private Task Escalate(int pid)
    {
        if (_reaper.Signal(pid, Native.Libc.SIGKILL))
            _log.LogWarning("tapdisk pid {Pid} ignored SIGINT: killed", pid);
        return Task.CompletedTask;
    }

    private void ArmDeadline(TapChannel channel)
    {
        var state = channel.Channel.State;
        if (channel.DeadlineArmedFor == state && channel.Deadline != null) return;
        channel.Deadline?.Cancel();
        channel.Deadline?.Dispose();
        channel.Deadline = null;
        channel.DeadlineArmedFor = state;
        if (!state.IsWaiting() && state != ChannelState.Launched) return;
        var limit = state is ChannelState.WaitPid or ChannelState.Launched ? _options.PidTimeout : _options.WaitTimeout;
        var cts = new CancellationTokenSource();
        channel.Deadline = cts;
        _ = Task.Delay(limit, cts.Token).ContinueWith(t =>
        {
            if (!t.IsCanceled) Post(new DeadlineExpired(channel, state));
        }, TaskScheduler.Default);
    }

    private async Task OnDeadlineAsync(TapChannel channel, ChannelState state)
    {
        if (channel.Destroyed || channel.Channel.State != state) return;
        var limit = state is ChannelState.WaitPid or ChannelState.Launched ? _options.PidTimeout : _options.WaitTimeout;
        await FaultAsync(channel, $"timed out after {limit.TotalSeconds:0.###} s waiting in state {(int)state} ({state})").ConfigureAwait(false);
    }
}
