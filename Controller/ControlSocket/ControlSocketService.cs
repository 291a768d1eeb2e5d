using BlkTapCtrl.Controller.Startup;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace BlkTapCtrl.Controller.ControlSocket;

/// <summary>
/// Hosts the control socket beside the supervisor: created at start (a failure is logged, not fatal — the
/// VBDs matter more than the operator's view), removed at stop.
/// </summary>
public sealed class ControlSocketService(ControllerOptions options, Supervisor supervisor, ILoggerFactory loggers) : IHostedService
{
    private readonly ILogger _log = loggers.CreateLogger("blktapctrl.control");
    private ControlSocketServer? _server;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(options.ControlSocket)!);
            _server = new ControlSocketServer(options.ControlSocket, supervisor, _log);
            _server.Start();
            _log.LogInformation("control socket {Path}", options.ControlSocket);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Net.Sockets.SocketException)
        {
            _log.LogError("control socket {Path}: {Error}; tap-ctl will not reach this controller", options.ControlSocket, e.Message);
        }
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_server != null) await _server.DisposeAsync().ConfigureAwait(false);
    }
}
