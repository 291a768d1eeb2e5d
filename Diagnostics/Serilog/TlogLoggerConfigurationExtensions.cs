using BlkTapCtrl.Diagnostics.LogFile;
using Serilog;
using Serilog.Configuration;

namespace BlkTapCtrl.Diagnostics.Serilog;

/// <summary><c>.WriteTo.TapdiskLog(logFile)</c>: tapdisk's log file (and, for errors, syslog) as a Serilog sink.</summary>
public static class TlogLoggerConfigurationExtensions
{
    public static LoggerConfiguration TapdiskLog(this LoggerSinkConfiguration writeTo, TapdiskLogFile logFile) =>
        writeTo.Sink(new TlogSink(logFile));
}
