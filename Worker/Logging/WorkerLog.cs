using System.Globalization;

namespace BlkTapCtrl.Worker.Logging;

/// <summary>
/// The worker's tlog front (reference §3.8): <c>&lt;function&gt;: &lt;msg&gt;</c> lines and
/// <c>ERROR: errno E at F: msg</c> for errors, every error reported at once (CA-34846, no de-duplication).
/// The sink defaults to stderr; the diagnostics work routes it to the log file and syslog.
/// Only error and debug paths call it, never the per-request hot path.
/// </summary>
public sealed class WorkerLog
{
    public enum Level { Warn = 0, Info = 1, Debug = 2 }

    public Level Threshold { get; set; } = Level.Info;

    /// <summary>Receives each formatted line with its level; replaceable (tests, log file, syslog).</summary>
    public Action<Level, string>? Sink { get; set; } = static (_, line) => Console.Error.WriteLine(line);

    /// <summary>
    /// Receives each error (errno, function, formatted <c>ERROR: …</c> line) instead of <see cref="Sink"/>:
    /// <see cref="WorkerDiagnostics"/> sends it to the log file and syslog at once.
    /// </summary>
    public Action<int, string, string>? ErrorSink { get; set; }

    /// <summary>Called by <see cref="MakePrecious"/> (SIGUSR1, watchdog): keep the log file, write a stats snapshot.</summary>
    public Action? PreciousRequested { get; set; }

    /// <summary>Set on an error: the log file should be kept.</summary>
    public long ErrorCount { get; private set; }

    public void Write(Level level, string function, string message)
    {
        if (level > Threshold) return;
        Sink?.Invoke(level, $"{function}: {message}");
    }

    public void Info(string function, string message) => Write(Level.Info, function, message);
    public void Warn(string function, string message) => Write(Level.Warn, function, message);

    /// <summary><paramref name="errno"/> positive or negative; logged as its absolute value like the original.</summary>
    public void Error(int errno, string function, string message)
    {
        ErrorCount++;
        var line = string.Create(CultureInfo.InvariantCulture, $"ERROR: errno {Math.Abs(errno)} at {function}: {message}");
        if (ErrorSink is { } errorSink) errorSink(Math.Abs(errno), function, line);
        else Sink?.Invoke(Level.Warn, line);
    }

    /// <summary>A debug dump happened: the log must survive the process (reference §3.1 USR1, §3.3 watchdog).</summary>
    public void MakePrecious() => PreciousRequested?.Invoke();
}
