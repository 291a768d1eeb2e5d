using BlkTapCtrl.Controller.Startup;
using BlkTapCtrl.Diagnostics.Serilog;
using BlkTapCtrl.Diagnostics.Syslog;
using Serilog;
using Serilog.Events;

namespace BlkTapCtrl.Controller.Hosting;

/// <summary>
/// The daemon's logging (Serilog): console (journald captures it under systemd), <c>&lt;log-dir&gt;/blktapctrl.log</c>,
/// and syslog through our non-blocking client (ident <c>BLKTAP-DAEMON[pid]</c> as the original, facility from
/// <c>-l</c>, socket from <c>--syslog-socket</c>, default /dev/log). A stalled or missing syslog daemon never blocks
/// the main loop: packets queue in the client's ring and a pump task sends them when the socket is writable
/// (it sleeps while nothing is queued). An unusable log directory costs the file, not the daemon.
/// Dispose flushes the logger, then closes the syslog client (which reports its totals and drains briefly).
/// </summary>
public sealed class LoggingSetup : IDisposable
{
    private const string Template = "{Timestamp:yyyy-MM-dd HH:mm:ss.fff} [{Level:u3}] {Message:lj}{NewLine}{Exception}";

    /// <summary>The syslog ident of the original daemon (reference §1.1); the client appends <c>[pid]</c>.</summary>
    public const string SyslogIdent = "BLKTAP-DAEMON";

    private readonly Serilog.Core.Logger _logger;
    private readonly SyslogClient? _syslog;
    private readonly SyslogWritablePump? _pump;
    private readonly CancellationTokenSource _stopPump = new();
    private readonly Task _pumping = Task.CompletedTask;

    private LoggingSetup(Serilog.Core.Logger logger, SyslogClient? syslog)
    {
        _logger = logger;
        _syslog = syslog;
        if (syslog != null)
        {
            _pump = new SyslogWritablePump(syslog);
            _pumping = Task.Run(() => _pump.RunAsync(_stopPump.Token));
        }
    }

    public Serilog.ILogger Logger => _logger;

    public static LoggingSetup Create(ControllerOptions options)
    {
        var config = new LoggerConfiguration()
            .MinimumLevel.Is(Environment.GetEnvironmentVariable("BLKTAPCTRL_DEBUG") is { Length: > 0 } ? LogEventLevel.Debug : LogEventLevel.Information)
            .MinimumLevel.Override("Microsoft", LogEventLevel.Warning)
            .Enrich.WithProperty("SyslogIdentifier", $"{SyslogIdent}[{Environment.ProcessId}]")
            .WriteTo.Console(outputTemplate: Template, standardErrorFromLevel: LogEventLevel.Verbose);

        string? syslogProblem = null;
        SyslogClient? syslog = null;
        try
        {
            syslog = new SyslogClient(new SyslogClientOptions
            {
                SocketPath = options.SyslogSocket,
                Ident = SyslogIdent,
                Facility = (Diagnostics.Syslog.SyslogFacility)(options.SyslogFacility >> 3),
                StatusPrefix = "blktapctrl-syslog",
            });
            config = config.WriteTo.NonBlockingSyslog(syslog);
        }
        catch (Exception e) when (e is IOException or ArgumentException)
        {
            syslogProblem = e.Message;
        }

        string? fileProblem = null;
        try
        {
            Directory.CreateDirectory(options.LogDir);
            config = config.WriteTo.File(Path.Combine(options.LogDir, "blktapctrl.log"), outputTemplate: Template);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            fileProblem = e.Message;
        }
        var logger = config.CreateLogger();
        if (fileProblem != null)
            logger.Warning("log directory {LogDir} unusable ({Problem}): no log file", options.LogDir, fileProblem);
        if (syslogProblem != null)
            logger.Warning("syslog unusable ({Problem}): not logging to syslog", syslogProblem);
        return new LoggingSetup(logger, syslog);
    }

    public void Dispose()
    {
        _logger.Dispose();
        _stopPump.Cancel();
        try { _pumping.Wait(TimeSpan.FromSeconds(1)); }
        catch (AggregateException) { }
        _pump?.Dispose();
        _syslog?.Dispose(); // close report, then a bounded drain
        _stopPump.Dispose();
    }
}
