using BlkTapCtrl.Diagnostics.LogFile;
using Serilog.Core;
using Serilog.Events;

namespace BlkTapCtrl.Diagnostics.Serilog;

/// <summary>
/// Serilog sink for tapdisk: Debug/Information/Warning events go to the log file at the tlog level they map to;
/// Error and Fatal events take the tlog_error path (file + syslog at once, counted, bucketed), with the errno
/// from the event's <c>Errno</c> property (0 when absent).
/// </summary>
public sealed class TlogSink : ILogEventSink
{
    private readonly TapdiskLogFile _log;
    private readonly EventText _text = new();
    private readonly Lock _gate = new();

    public TlogSink(TapdiskLogFile log) => _log = log;

    public void Emit(LogEvent logEvent)
    {
        if (logEvent.Level >= LogEventLevel.Error)
        {
            lock (_gate)
                _log.ErrorLine(EventText.Errno(logEvent) ?? 0, EventText.Origin(logEvent), _text.Render(logEvent, asError: true));
            return;
        }
        var level = logEvent.Level switch
        {
            LogEventLevel.Warning => TlogLevel.Warn,
            LogEventLevel.Information => TlogLevel.Info,
            _ => TlogLevel.Debug,
        };
        if (level > _log.Level)
            return;   // skip rendering entirely: disabled levels must cost nothing
        lock (_gate)
            _log.WriteLine(level, _text.Render(logEvent, asError: false));
    }
}
