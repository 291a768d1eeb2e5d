using System.Globalization;
using BlkTapCtrl.Controller.Channels;
using BlkTapCtrl.Controller.Params;
using BlkTapCtrl.Controller.Spawning;
using BlkTapCtrl.XenStore.Client;
using Microsoft.Extensions.Logging;

namespace BlkTapCtrl.Controller;

// Start-up over an existing store. The original only ever saw backends appear while it ran ("exiting with
// running tapdisks is presently irrecoverable", changelog CA-26523). Here a controller that starts (or is
// restarted by systemd, whose KillMode=process leaves the workers running) takes every backend already in
// XenStore back: a worker that still serves it is reattached — never a second tapdisk on the same image —
// and a backend without one is probed as if it had just appeared.
public sealed partial class Supervisor
{
    private async Task RecoverExistingBackendsAsync()
    {
        string root = XenStoreKeys.BackendRoot(Dom0);
        int reattached = 0, probed = 0;
        foreach (string domId in await TryDirectoryAsync(root).ConfigureAwait(false))
        {
            foreach (string devId in await TryDirectoryAsync($"{root}/{domId}").ConfigureAwait(false))
            {
                if (BackendPath.TryParse($"{root}/{domId}/{devId}") is not { } backend) continue;
                try
                {
                    if (await TryReattachAsync(backend).ConfigureAwait(false))
                        reattached++;
                    else
                    {
                        await ProbeAsync(backend).ConfigureAwait(false);
                        probed++;
                    }
                }
                catch (Exception e) when (e is XenStoreException or XenStoreConnectionLostException or IOException)
                {
                    _log.LogError("{Path}: taking back the existing backend failed: {Error}", backend.Path, e.Message);
                }
            }
        }
        if (reattached + probed > 0)
            _log.LogInformation("start-up: {Reattached} running tapdisks reattached, {Probed} existing backends probed", reattached, probed);
    }

    private async Task<IReadOnlyList<string>> TryDirectoryAsync(string path)
    {
        try { return await Xs.DirectoryAsync(path).ConfigureAwait(false); }
        catch (XenStoreException) { return []; } // ENOENT: nothing there yet
    }

    /// <summary>
    /// Reattaches the worker named by the backend's <c>tapdisk-pid</c> when it still runs our FIFOs of this
    /// run directory; false when there is none to take back (the backend is then probed afresh).
    /// </summary>
    private async Task<bool> TryReattachAsync(BackendPath backend)
    {
        var keys = new XenStoreKeys(backend.Path);
        if (!ushort.TryParse((await Xs.TryReadAsync(keys.TapdiskUuid).ConfigureAwait(false))?.TrimEnd('\0'),
                NumberStyles.None, CultureInfo.InvariantCulture, out ushort cookie)
            || !int.TryParse((await Xs.TryReadAsync(keys.TapdiskPid).ConfigureAwait(false))?.TrimEnd('\0'),
                NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
            return false;
        if (WorkerProcess.FindMinor(pid, _options.RunDir) is not { } minor)
        {
            _log.LogInformation("{Path}: tapdisk pid {Pid} of an earlier run is gone: starting afresh", backend.Path, pid);
            await Xs.RemoveAsync(keys.TapdiskPid).ConfigureAwait(false);
            return false;
        }
        if (_channels.Any(c => c.Cookie == cookie || c.Device?.Minor == minor))
        {
            _log.LogWarning("{Path}: tapdisk pid {Pid} claims cookie {Cookie} / minor {Minor} already in use: starting afresh", backend.Path, pid, cookie, minor);
            return false;
        }

        var channel = new TapChannel(backend, cookie, OnChannelUnhandled, (c, text) => _log.LogWarning("{Channel}: {Text}", c, text));
        string step = "reading parameters";
        try
        {
            await GatherParametersAsync(channel).ConfigureAwait(false);
            step = "reclaiming the device";
            channel.Device = _devices.Reclaim(minor);
            step = "reopening the control FIFOs";
            var link = new WorkerLink(ControlFifos.OpenExisting(_options.RunDir, minor), pid, minor);
            link.Cookies.Add(cookie);
            _workersNotYetReaped.Add(pid);
            if (!_reaper.TrackOrphan(pid))
            {
                _workersNotYetReaped.Remove(pid);
                link.Dispose(); // the worker exited meanwhile: its FIFOs are stale
                _devices.Release(channel.Device);
                return false;
            }
            channel.Link = link;
            channel.ReportedPid = pid;
            link.Start(_fifoPoller, (l, m) => Post(new MessageArrived(l, m)), (l, error) => Post(new LinkFailed(l, error)));
            // pause-done is written only after PAUSE_RSP and removed only after RESUME_RSP: it tells the worker's state.
            channel.Channel.Reattach(workerPaused: await Xs.ExistsAsync(keys.PauseDone).ConfigureAwait(false));

            step = "registering xenstore watches";
            channel.ShutdownWatch = await Xs.WatchAsync(keys.TapdiskRequest, $"shutdown-{channel.CookieText}-{Guid.NewGuid():N}").ConfigureAwait(false);
            channel.PauseWatch = await Xs.WatchAsync(keys.Pause, $"pause-{channel.CookieText}-{Guid.NewGuid():N}").ConfigureAwait(false);
            step = "initializing shutdown state";
            await EvaluateShutdownAsync(channel).ConfigureAwait(false);
            step = "initializing pause state";
            await EvaluatePauseAsync(channel).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ChannelOpenException or ParamsException or XenStoreException or IOException)
        {
            // A worker we cannot take back must not keep the image: ask it to close its VBDs and exit.
            string text = $"reattaching tapdisk pid {pid}: {step}: {e.Message}";
            _log.LogError("{Channel}: {Error}", channel, text);
            channel.Vbd.Fire(StateMachines.Vbd.VbdTrigger.Fatal);
            await WriteGuardedAsync(channel, keys.TapdiskError, text).ConfigureAwait(false);
            await UnwatchAsync(channel).ConfigureAwait(false);
            channel.Link?.Dispose();
            if (channel.Device != null) _devices.Release(channel.Device);
            if (!_reaper.Signal(pid, Native.Libc.SIGINT)) Native.Libc.kill(pid, Native.Libc.SIGINT);
            return true;
        }

        _channels.Insert(0, channel);
        if (cookie >= _nextCookie) _nextCookie = (ushort)(cookie + 1);
        _log.LogInformation("{Channel}: reattached running tapdisk pid {Pid} on minor {Minor} ({State})", channel, pid, minor, channel.Channel.State);
        _ = PumpWatchAsync(channel.ShutdownWatch!, WatchKind.Shutdown, channel);
        _ = PumpWatchAsync(channel.PauseWatch!, WatchKind.Pause, channel);
        return true;
    }
}
