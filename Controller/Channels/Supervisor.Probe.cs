using System.Globalization;
using BlkTapCtrl.Controller.Channels;
using BlkTapCtrl.Controller.Params;
using BlkTapCtrl.StateMachines.Shutdown;
using BlkTapCtrl.StateMachines.Vbd;
using BlkTapCtrl.XenStore.Client;
using Microsoft.Extensions.Logging;

namespace BlkTapCtrl.Controller;

// Backend watch → probe / remove (§1.3), channel open (§1.4), and the per-channel watches (§1.9).
public sealed partial class Supervisor
{
    /// <summary>The channels currently listed (newest first), for tests and diagnostics.</summary>
    public int ChannelCount => _channels.Count;

    private async Task OnBackendWatchAsync(string path)
    {
        if (BackendPath.TryParse(path) is not { } backend || backend.Dom0 != Dom0)
            return; // the root itself, deeper keys, or not ours
        if (await Xs.ExistsAsync(path).ConfigureAwait(false))
            await ProbeAsync(backend).ConfigureAwait(false);
        else
            await RemoveAsync(backend).ConfigureAwait(false);
    }

    private XenStoreClient Xs => _xs ?? throw new InvalidOperationException("not connected to xenstore");

    private TapChannel? Find(BackendPath backend) =>
        _channels.FirstOrDefault(c => c.Backend.DomId == backend.DomId && c.Backend.DevId == backend.DevId);

    private async Task ProbeAsync(BackendPath backend)
    {
        if (_stopping) return;
        if (Find(backend) is { } existing)
        {
            if (await Xs.TryReadAsync(existing.Keys.TapdiskUuid).ConfigureAwait(false) == null)
            {
                // Recreated before we closed the old channel (CA-33664): finish it, then re-probe.
                _log.LogInformation("{Channel}: backend recreated without our tapdisk-uuid: recycling", existing);
                existing.Vbd.Fire(VbdTrigger.Recycle);
                await DriveAsync(existing).ConfigureAwait(false);
            }
            else
                _log.LogDebug("{Path}: duplicate probe", backend.Path);
            return;
        }

        var channel = new TapChannel(backend, NextCookie(), OnChannelUnhandled, (c, text) => _log.LogWarning("{Channel}: {Text}", c, text));
        await Xs.WriteAsync(channel.Keys.TapdiskUuid, channel.CookieText).ConfigureAwait(false);
        string step = "allocating device";
        try
        {
            step = "checking uuid";
            var uuid = await Xs.ReadAsync(channel.Keys.TapdiskUuid).ConfigureAwait(false);
            if (uuid != channel.CookieText)
                throw new ChannelOpenException($"tapdisk-uuid is '{uuid}', expected {channel.CookieText}");

            step = "gathering parameters";
            await GatherParametersAsync(channel).ConfigureAwait(false);

            step = "registering xenstore watches";
            channel.ShutdownWatch = await Xs.WatchAsync(channel.Keys.TapdiskRequest, $"shutdown-{channel.CookieText}-{Guid.NewGuid():N}").ConfigureAwait(false);
            channel.PauseWatch = await Xs.WatchAsync(channel.Keys.Pause, $"pause-{channel.CookieText}-{Guid.NewGuid():N}").ConfigureAwait(false);

            step = "initializing shutdown state";
            await EvaluateShutdownAsync(channel).ConfigureAwait(false);

            step = "initializing pause state";
            await EvaluatePauseAsync(channel).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ChannelOpenException or ParamsException or XenStoreException)
        {
            string text = $"{step}: {e.Message}";
            _log.LogError("{Channel}: {Error}", channel, text);
            channel.Vbd.Fire(VbdTrigger.Fatal);
            await WriteGuardedAsync(channel, channel.Keys.TapdiskError, text).ConfigureAwait(false);
            await UnwatchAsync(channel).ConfigureAwait(false);
            return;
        }

        _channels.Insert(0, channel);
        _log.LogInformation("{Channel}: opened {Path} ({Driver}:{VdiPath})", channel, backend.Path, channel.Params!.Handle, channel.Params.VdiPath);
        // No drive here: the new watches fire once at registration and those events do the first drive.
        _ = PumpWatchAsync(channel.ShutdownWatch!, WatchKind.Shutdown, channel);
        _ = PumpWatchAsync(channel.PauseWatch!, WatchKind.Pause, channel);
    }

    private ushort NextCookie()
    {
        // uint16 from 0, wrapping; a cookie still in use is skipped so replies can never be confused.
        for (int i = 0; i <= ushort.MaxValue; i++)
        {
            ushort cookie = _nextCookie++;
            if (!_channels.Any(c => c.Cookie == cookie)) return cookie;
        }
        throw new ChannelOpenException("no free cookie");
    }

    private async Task GatherParametersAsync(TapChannel channel)
    {
        // frontend, params and mode are read in one transaction (retried on EAGAIN) so they belong together.
        var (_, values) = await Xs.RunInTransactionAsync(async tx =>
        {
            var frontend = await tx.ReadAsync(channel.Keys.Frontend).ConfigureAwait(false);
            var @params = await tx.ReadAsync(channel.Keys.Params).ConfigureAwait(false);
            var mode = await tx.ReadAsync(channel.Keys.Mode).ConfigureAwait(false);
            return (frontend, @params, mode);
        }).ConfigureAwait(false);
        channel.ReadOnly = values.mode.StartsWith('r');
        channel.Params = await ReadParamsAsync(channel, values.@params).ConfigureAwait(false);
    }

    private async Task<VbdParams> ReadParamsAsync(TapChannel channel, string @params)
    {
        // Both reads leave together: one round trip (this runs on every unpause).
        var vdiTypeTask = Xs.TryReadAsync(channel.Keys.VdiType);
        var storage = await Xs.TryReadAsync(channel.Keys.StorageType).ConfigureAwait(false);
        var vdiType = await vdiTypeTask.ConfigureAwait(false);
        return VbdParams.Parse(@params.TrimEnd('\0'), vdiType?.TrimEnd('\0'), storage?.TrimEnd('\0'));
    }

    private async Task RemoveAsync(BackendPath backend)
    {
        if (Find(backend) is not { } channel) return;
        _log.LogInformation("{Channel}: backend removed", channel);
        channel.Vbd.Fire(VbdTrigger.BackendRemoved); // assignment: overrides any state
        await DriveAsync(channel).ConfigureAwait(false);
    }

    /// <summary>tapdisk-request: absent ⇒ down, start ⇒ up, shutdown-normal/-force ⇒ down (+force); else EINVAL.</summary>
    private async Task EvaluateShutdownAsync(TapChannel channel)
    {
        var request = (await Xs.TryReadAsync(channel.Keys.TapdiskRequest).ConfigureAwait(false))?.TrimEnd('\0');
        if (!channel.Shutdown.Apply(request))
            throw new ChannelOpenException($"tapdisk-request '{request}': Invalid argument");
    }

    /// <summary>
    /// pause exists ⇒ pausing; else re-read params, unpaused, remove pause-done (§1.7).
    /// <paramref name="pauseExists"/> is the existence test already sent by the caller, if any.
    /// </summary>
    private async Task EvaluatePauseAsync(TapChannel channel, Task<bool>? pauseExists = null)
    {
        if (await (pauseExists ?? Xs.ExistsAsync(channel.Keys.Pause)).ConfigureAwait(false))
        {
            channel.Vbd.Fire(VbdTrigger.PauseRequested); // result ignored, as the original
            return;
        }
        var @params = await Xs.ReadAsync(channel.Keys.Params).ConfigureAwait(false);
        channel.Params = await ReadParamsAsync(channel, @params).ConfigureAwait(false);
        if (!channel.Vbd.Unpause(paramsParsed: true))
            throw new ChannelOpenException("unpause refused: Invalid argument");
        await Xs.RemoveAsync(channel.Keys.PauseDone).ConfigureAwait(false);
    }

    private static bool IsChannelWatchPath(string path) => path.Count(ch => ch == '/') >= 7;

    private async Task OnShutdownWatchAsync(TapChannel channel, string path)
    {
        if (channel.Destroyed || _stopping) return;
        if (!IsChannelWatchPath(path))
        {
            await ReportFatalAsync(channel, "bad shutdown watch").ConfigureAwait(false);
            return;
        }
        if (channel.Vbd.IsFenced) return; // CA-34208: broken/dead/recycled channels ignore their watches
        if (!await OwnsBackendAsync(channel).ConfigureAwait(false)) return;
        try
        {
            await EvaluateShutdownAsync(channel).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ChannelOpenException or XenStoreException)
        {
            _log.LogWarning("{Channel}: shutdown event failed: {Error}", channel, e.Message);
            return;
        }
        await DriveAsync(channel).ConfigureAwait(false);
    }

    private async Task OnPauseWatchAsync(TapChannel channel, string path)
    {
        if (channel.Destroyed || _stopping) return;
        if (!IsChannelWatchPath(path))
        {
            await ReportFatalAsync(channel, "bad pause watch").ConfigureAwait(false);
            return;
        }
        if (channel.Vbd.IsFenced) return; // CA-34208
        // The ownership check and the pause test leave together (one round trip on the pause path); the
        // pause answer is only used when the backend is still ours.
        var pauseExists = Xs.ExistsAsync(channel.Keys.Pause);
        bool owned = false;
        try
        {
            owned = await OwnsBackendAsync(channel).ConfigureAwait(false);
        }
        finally
        {
            if (!owned) Forget(pauseExists);
        }
        if (!owned) return;
        try
        {
            await EvaluatePauseAsync(channel, pauseExists).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ChannelOpenException or ParamsException or XenStoreException)
        {
            _log.LogWarning("{Channel}: pause event failed: {Error}", channel, e.Message);
            return;
        }
        await DriveAsync(channel).ConfigureAwait(false);
    }

    /// <summary>A reply nobody needs any more: its failure, if any, is observed and dropped.</summary>
    private static void Forget(Task task) =>
        task.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);

    /// <summary>tapdisk-uuid still equals our cookie (a recreated or foreign directory is not ours).</summary>
    private async Task<bool> OwnsBackendAsync(TapChannel channel) =>
        await Xs.TryReadAsync(channel.Keys.TapdiskUuid).ConfigureAwait(false) is { } uuid
        && uuid.TrimEnd('\0') == channel.CookieText;

    private async Task UnwatchAsync(TapChannel channel)
    {
        foreach (var watch in new[] { channel.ShutdownWatch, channel.PauseWatch })
        {
            if (watch == null) continue;
            try { await watch.DisposeAsync().ConfigureAwait(false); }
            catch (Exception e) when (e is XenStoreException or XenStoreConnectionLostException) { }
        }
        channel.ShutdownWatch = channel.PauseWatch = null;
    }
}

/// <summary>A step of channel open failed; the message names what was wrong.</summary>
public sealed class ChannelOpenException(string message) : Exception(message);
