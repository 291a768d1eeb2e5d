using BlkTapCtrl.Controller.Startup;
using Serilog;
using Serilog.Events;

namespace BlkTapCtrl.Controller.Hosting;

/// <summary>
/// Serilog: console (journald captures it under systemd) and <c>&lt;log-dir&gt;/blktapctrl.log</c>. An unusable log
/// directory costs the file, not the daemon.
/// </summary>
public static class LoggingSetup
{
    private const string Template = "{Timestamp:yyyy-MM-dd HH:mm:ss.fff} [{Level:u3}] {Message:lj}{NewLine}{Exception}";

    public static Serilog.ILogger Create(ControllerOptions options)
    {
        var config = new LoggerConfiguration()
            .MinimumLevel.Is(Environment.GetEnvironmentVariable("BLKTAPCTRL_DEBUG") is { Length: > 0 } ? LogEventLevel.Debug : LogEventLevel.Information)
            .MinimumLevel.Override("Microsoft", LogEventLevel.Warning)
            .Enrich.WithProperty("SyslogIdentifier", $"BLKTAP-DAEMON[{Environment.ProcessId}]")
            .WriteTo.Console(outputTemplate: Template, standardErrorFromLevel: LogEventLevel.Verbose);
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
            logger.Warning("log directory {LogDir} unusable ({Problem}): logging to the console only", options.LogDir, fileProblem);
        return logger;
    }
}
