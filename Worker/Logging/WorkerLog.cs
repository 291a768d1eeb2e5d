using System.Runtime.CompilerServices;

namespace BlkTapCtrl.Worker.Logging;

/// <summary>
/// The worker's tlog front (reference §3.8): <c>&lt;function&gt;: &lt;msg&gt;</c> lines and
/// <c>ERROR: errno E at F: msg</c> for errors, every error reported at once (CA-34846, no de-duplication).
/// The sink defaults to stderr; the diagnostics work routes it to the log file and syslog.
/// Lines are built by <see cref="LogLineHandler"/> in a reused buffer and handed to the sinks as spans, so the
/// datapath's error lines (a failed request) allocate nothing, and a line no sink takes is never formatted.
/// </summary>
public sealed class WorkerLog
{
    public enum Level { Warn = 0, Info = 1, Debug = 2 }

    /// <summary>Longest line; longer ones are cut (the original's tlog lines are at most 1024 bytes).</summary>
    public const int MaxLineChars = 1024;

    /// <summary>Receives a formatted line; the span is only valid during the call.</summary>
    public delegate void LineSink(Level level, ReadOnlySpan<char> line);

    /// <summary>Receives an error (positive errno, function, the formatted <c>ERROR: …</c> line, valid during the call).</summary>
    public delegate void ErrorLineSink(int errno, string function, ReadOnlySpan<char> line);

    public Level Threshold { get; set; } = Level.Info;

    /// <summary>Receives each formatted line with its level; replaceable (tests, log file, syslog).</summary>
    public LineSink? Sink { get; set; } = static (_, line) => Console.Error.WriteLine(line);

    /// <summary>
    /// Receives each error instead of <see cref="Sink"/>: <see cref="WorkerDiagnostics"/> sends it to the log file
    /// and syslog at once.
    /// </summary>
    public ErrorLineSink? ErrorSink { get; set; }

    /// <summary>Called by <see cref="MakePrecious"/> (SIGUSR1, watchdog): keep the log file, write a stats snapshot.</summary>
    public Action? PreciousRequested { get; set; }

    /// <summary>Set on an error: the log file should be kept.</summary>
    public long ErrorCount { get; private set; }

    public void Write(Level level, string function,
        [InterpolatedStringHandlerArgument("", "level", "function")] ref LogLineHandler message)
    {
        try
        {
            if (level <= Threshold && Sink is { } sink) sink(level, message.Text);
        }
        finally { message.Release(); }
    }

    public void Write(Level level, string function, string message)
    {
        if (level > Threshold || Sink is not { } sink) return;
        var line = LogLineHandler.Begin();
        line.AppendLiteral(function);
        line.AppendLiteral(": ");
        line.AppendLiteral(message);
        try { sink(level, line.Text); }
        finally { line.Release(); }
    }

    public void Info(string function, [InterpolatedStringHandlerArgument("", "function")] ref InfoLine message) =>
        Write(Level.Info, function, ref message.Line);

    public void Info(string function, string message) => Write(Level.Info, function, message);

    public void Warn(string function, [InterpolatedStringHandlerArgument("", "function")] ref WarnLine message) =>
        Write(Level.Warn, function, ref message.Line);

    public void Warn(string function, string message) => Write(Level.Warn, function, message);

    /// <summary><paramref name="errno"/> positive or negative; logged as its absolute value like the original.</summary>
    public void Error(int errno, string function,
        [InterpolatedStringHandlerArgument("", "errno", "function")] ref LogLineHandler message)
    {
        ErrorCount++;
        try { Deliver(Math.Abs(errno), function, message.Text); }
        finally { message.Release(); }
    }

    public void Error(int errno, string function, string message)
    {
        ErrorCount++;
        if (ErrorSink == null && Sink == null) return;
        var line = LogLineHandler.Begin();
        line.AppendLiteral("ERROR: errno ");
        line.AppendFormatted(Math.Abs(errno));
        line.AppendLiteral(" at ");
        line.AppendLiteral(function);
        line.AppendLiteral(": ");
        line.AppendLiteral(message);
        try { Deliver(Math.Abs(errno), function, line.Text); }
        finally { line.Release(); }
    }

    private void Deliver(int errno, string function, ReadOnlySpan<char> line)
    {
        if (ErrorSink is { } errorSink) errorSink(errno, function, line);
        else Sink?.Invoke(Level.Warn, line);
    }

    /// <summary>A debug dump happened: the log must survive the process (reference §3.1 USR1, §3.3 watchdog).</summary>
    public void MakePrecious() => PreciousRequested?.Invoke();

    /// <summary>An <see cref="Info(string, ref InfoLine)"/> message: formatted only when INFO is on and a sink is set.</summary>
    [InterpolatedStringHandler]
    public ref struct InfoLine
    {
        public LogLineHandler Line;

        public InfoLine(int literalLength, int formattedCount, WorkerLog log, string function, out bool enabled) =>
            Line = new LogLineHandler(literalLength, formattedCount, log, Level.Info, function, out enabled);

        public void AppendLiteral(string s) => Line.AppendLiteral(s);
        public void AppendFormatted(ReadOnlySpan<char> s) => Line.AppendFormatted(s);
        public void AppendFormatted(string? s) => Line.AppendFormatted(s);
        public void AppendFormatted<T>(T value) => Line.AppendFormatted(value);
        public void AppendFormatted<T>(T value, string? format) => Line.AppendFormatted(value, format);
        public void AppendFormatted<T>(T value, int alignment) => Line.AppendFormatted(value, alignment);
        public void AppendFormatted<T>(T value, int alignment, string? format) => Line.AppendFormatted(value, alignment, format);
    }

    /// <summary>A <see cref="Warn(string, ref WarnLine)"/> message: formatted only when a sink is set.</summary>
    [InterpolatedStringHandler]
    public ref struct WarnLine
    {
        public LogLineHandler Line;

        public WarnLine(int literalLength, int formattedCount, WorkerLog log, string function, out bool enabled) =>
            Line = new LogLineHandler(literalLength, formattedCount, log, Level.Warn, function, out enabled);

        public void AppendLiteral(string s) => Line.AppendLiteral(s);
        public void AppendFormatted(ReadOnlySpan<char> s) => Line.AppendFormatted(s);
        public void AppendFormatted(string? s) => Line.AppendFormatted(s);
        public void AppendFormatted<T>(T value) => Line.AppendFormatted(value);
        public void AppendFormatted<T>(T value, string? format) => Line.AppendFormatted(value, format);
        public void AppendFormatted<T>(T value, int alignment) => Line.AppendFormatted(value, alignment);
        public void AppendFormatted<T>(T value, int alignment, string? format) => Line.AppendFormatted(value, alignment, format);
    }
}
