using System.Threading.Channels;
using BlkTapCtrl.Controller.Channels;
using BlkTapCtrl.Controller.Devices;
using BlkTapCtrl.Controller.Spawning;
using BlkTapCtrl.Controller.Startup;
using BlkTapCtrl.Protocol.Control;
using BlkTapCtrl.XenStore.Client;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging;

namespace BlkTapCtrl.Controller;

/// <summary>
/// The supervisor's main loop (reference §1.6): one queue of events — XenStore watch firings, worker
/// messages, child exits, wait deadlines, the stop request — handled strictly one after another, so
/// every channel is only ever touched by this loop (as in the original's single-threaded select loop).
/// Nothing polls: an idle controller waits on the queue.
/// </summary>
public sealed partial class Supervisor : IAsyncDisposable
{
    private readonly ControllerOptions _options;
    private readonly ILogger _log;
    private readonly IBlktapDevices _devices;
    private readonly TapdiskLauncher _launcher;
    private readonly ISystemdNotifier? _systemd;
    private readonly Channel<object> _events = Channel.CreateUnbounded<object>(new UnboundedChannelOptions { SingleReader = true });
    private readonly List<TapChannel> _channels = [];
    private readonly ChildReaper _reaper;

    /// <summary>
    /// Workers spawned or reattached whose exit the loop has not handled yet. The reaper's own count drops on its
    /// thread before the exit event reaches the loop; a stop waits on this one, so every exit is mapped to its
    /// channel and logged before the daemon ends. Touched only on the loop.
    /// </summary>
    private readonly HashSet<int> _workersNotYetReaped = new();
    private readonly FifoPoller _fifoPoller = new();
    private XenStoreClient? _xs;
    private ushort _nextCookie;
    private bool _stopping;
    private TaskCompletionSource<bool>? _stopped;

    private sealed record WatchFired(XenStoreWatchEvent Event, WatchKind Kind, TapChannel? Channel);
    private sealed record MessageArrived(WorkerLink Link, ControlMessage Message);
    private sealed record LinkFailed(WorkerLink Link, string Error);
    private sealed record ChildExited(ChildExit Exit);
    private sealed record DeadlineExpired(TapChannel Channel, StateMachines.Channel.ChannelState State);
    private sealed record ChannelFatal(TapChannel Channel, string Text);
    private sealed record KillEscalation(int Pid);
    private sealed record StopRequested;
    private sealed record StopDeadline;
    private sealed record WatchdogTick;

    private enum WatchKind { Backend, Shutdown, Pause }

    public Supervisor(ControllerOptions options, ILogger log, IBlktapDevices devices, TapdiskLauncher launcher,
        ISystemdNotifier? systemd = null)
    {
        _options = options;
        _log = log;
        _devices = devices;
        _launcher = launcher;
        _systemd = systemd;
        _reaper = new ChildReaper(exit => Post(new ChildExited(exit)));
    }

    /// <summary>dom0's domain id once discovered (§1.1).</summary>
    public int Dom0 { get; private set; } = -1;

    private void Post(object e) => _events.Writer.TryWrite(e);

    /// <summary>Asks the loop to close every VBD and finish (SIGTERM); completes when it has.</summary>
    public Task StopAsync()
    {
        _stopped ??= new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(new StopRequested());
        return _stopped.Task;
    }

    /// <summary>
    /// Start-up (§1.1) then the main loop. Returns the exit status: 0 after a clean stop, 1 when start-up failed.
    /// </summary>
    public async Task<int> RunAsync(CancellationToken cancel)
    {
        try
        {
            Directory.CreateDirectory(_options.RunDir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _log.LogCritical("creating run directory {RunDir}: {Error}", _options.RunDir, e.Message);
            return ExitCodes.StartupFailure;
        }

        _xs = await ConnectXenStoreAsync(cancel).ConfigureAwait(false);
        if (_xs == null)
            return ExitCodes.StartupFailure;

        XenStoreWatch backendWatch;
        try
        {
            Dom0 = await Dom0Discovery.FindAsync(_xs, _log, cancel).ConfigureAwait(false);
            string root = XenStoreKeys.BackendRoot(Dom0);
            backendWatch = await _xs.WatchAsync(root, "backend", cancel).ConfigureAwait(false);
            _log.LogInformation("dom0 is domain {Dom0}; watching {Root}", Dom0, root);
        }
        catch (OperationCanceledException)
        {
            return ExitCodes.Success; // stopped while waiting for dom0: nothing was started
        }
        catch (XenStoreException e)
        {
            _log.LogCritical("start-up: {Error}", e.Message);
            return ExitCodes.StartupFailure;
        }

        await RecoverExistingBackendsAsync().ConfigureAwait(false);
        _ = PumpWatchAsync(backendWatch, WatchKind.Backend, null);
        _systemd?.Notify(ServiceState.Ready);
        StartWatchdog(cancel);

        await foreach (var e in _events.Reader.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
        {
            try
            {
                await HandleAsync(e).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is XenStoreException or XenStoreConnectionLostException or IOException)
            {
                // One failed event never takes the daemon down; the channel concerned reports it when it matters.
                _log.LogError("handling {Event}: {Error}", e.GetType().Name, ex.Message);
            }
            if (_stopping && AllWorkersGone())
                break;
        }
        await backendWatch.DisposeAsync().ConfigureAwait(false);
        _stopped?.TrySetResult(true);
        return ExitCodes.Success;
    }

    private async Task<XenStoreClient?> ConnectXenStoreAsync(CancellationToken cancel)
    {
        // Two attempts two seconds apart, as the original (§1.1); then the start-up fails.
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                return await XenStoreClient.ConnectAsync(new XenStoreClientOptions
                {
                    Path = _options.XenStorePath,
                    ReconnectAutomatically = true,
                }, cancel).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or XenStoreConnectionLostException or XenStoreException)
            {
                _log.LogError("connecting to xenstore at {Path} (attempt {Attempt}): {Error}", _options.XenStorePath, attempt, e.Message);
                if (attempt == 2) return null;
                await Task.Delay(TimeSpan.FromSeconds(2), cancel).ConfigureAwait(false);
            }
        }
    }

    private async Task PumpWatchAsync(XenStoreWatch watch, WatchKind kind, TapChannel? channel)
    {
        try
        {
            await foreach (var e in watch.ReadAllAsync().ConfigureAwait(false))
                Post(new WatchFired(e, kind, channel));
        }
        catch (ChannelClosedException) { }
    }

    private void StartWatchdog(CancellationToken cancel)
    {
        // systemd's WatchdogSec: ping from the loop itself (at half the interval) so a wedged loop is restarted.
        if (_systemd?.IsEnabled != true
            || !long.TryParse(Environment.GetEnvironmentVariable("WATCHDOG_USEC"), out long usec) || usec <= 0)
            return;
        var period = TimeSpan.FromMicroseconds(usec / 2.0);
        _ = Task.Run(async () =>
        {
            using var timer = new PeriodicTimer(period);
            while (await timer.WaitForNextTickAsync(cancel).ConfigureAwait(false))
                Post(new WatchdogTick());
        }, CancellationToken.None).ContinueWith(_ => { }, TaskScheduler.Default);
    }

    private Task HandleAsync(object e) => e switch
    {
        WatchFired w => w.Kind switch
        {
            WatchKind.Backend => OnBackendWatchAsync(w.Event.Path),
            WatchKind.Shutdown => OnShutdownWatchAsync(w.Channel!, w.Event.Path),
            _ => OnPauseWatchAsync(w.Channel!, w.Event.Path),
        },
        MessageArrived m => OnMessageAsync(m.Link, m.Message),
        LinkFailed f => OnLinkFailedAsync(f.Link, f.Error),
        ChildExited c => OnChildExitedAsync(c.Exit),
        DeadlineExpired d => OnDeadlineAsync(d.Channel, d.State),
        ChannelFatal f => FaultAsync(f.Channel, f.Text),
        KillEscalation k => Escalate(k.Pid),
        StopRequested => OnStopRequestedAsync(),
        StopDeadline => OnStopDeadline(),
        WatchdogTick => Watchdog(),
        LoopCall call => call.Run(),
        _ => Task.CompletedTask,
    };

    private Task Watchdog()
    {
        _systemd?.Notify(new ServiceState("WATCHDOG=1"));
        return Task.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        _reaper.Dispose();
        _fifoPoller.Dispose();
        if (_xs != null) await _xs.DisposeAsync().ConfigureAwait(false);
    }
}
