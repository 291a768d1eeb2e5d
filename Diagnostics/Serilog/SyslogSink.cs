using BlkTapCtrl.Diagnostics.Syslog;
using Serilog.Core;
using Serilog.Events;

namespace BlkTapCtrl.Diagnostics.Serilog;

/// <summary>
/// Serilog sink writing each event to a <see cref="SyslogClient"/> at the matching severity. Logging never
/// blocks (the client queues or drops); the sink does not own the client.
/// </summary>
public sealed class SyslogSink : ILogEventSink
{
    private readonly SyslogClient _client;
    private readonly EventText _text = new();
    private readonly Lock _gate = new();

    public SyslogSink(SyslogClient client) => _client = client;

    public void Emit(LogEvent logEvent)
    {
        lock (_gate)
            _client.Log(Severity(logEvent.Level), _text.Render(logEvent, asError: logEvent.Level >= LogEventLevel.Error));
    }

    public static SyslogSeverity Severity(LogEventLevel level) => level switch
    {
        LogEventLevel.Fatal => SyslogSeverity.Critical,
        LogEventLevel.Error => SyslogSeverity.Error,
        LogEventLevel.Warning => SyslogSeverity.Warning,
        LogEventLevel.Information => SyslogSeverity.Informational,
        _ => SyslogSeverity.Debug,
    };
}
