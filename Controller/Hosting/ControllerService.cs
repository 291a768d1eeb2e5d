using Microsoft.Extensions.Hosting;

namespace BlkTapCtrl.Controller.Hosting;

/// <summary>The daemon's exit status, set by the service and returned by Main.</summary>
public sealed class ExitStatus
{
    public int Code { get; set; }
}

/// <summary>
/// Runs the supervisor as the host's one background service. SIGTERM (the host's stop) asks the supervisor to
/// close every VBD first; a failed start-up stops the host with exit status 1.
/// </summary>
public sealed class ControllerService(Supervisor supervisor, ExitStatus exitStatus, IHostApplicationLifetime lifetime) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Leave the host's start-up path at once: the supervisor runs on the pool.
        await Task.Yield();
        exitStatus.Code = await supervisor.RunAsync(stoppingToken).ConfigureAwait(false);
        lifetime.StopApplication();
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        _ = supervisor.StopAsync();
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
    }
}
