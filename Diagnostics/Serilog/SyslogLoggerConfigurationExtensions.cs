using BlkTapCtrl.Diagnostics.Syslog;
using Serilog;
using Serilog.Configuration;
using Serilog.Events;

namespace BlkTapCtrl.Diagnostics.Serilog;

/// <summary><c>.WriteTo.NonBlockingSyslog(client)</c> for Serilog configuration in code (no reflection).</summary>
public static class SyslogLoggerConfigurationExtensions
{
    public static LoggerConfiguration NonBlockingSyslog(this LoggerSinkConfiguration writeTo, SyslogClient client,
        LogEventLevel restrictedToMinimumLevel = LogEventLevel.Information) =>
        writeTo.Sink(new SyslogSink(client), restrictedToMinimumLevel);
}
