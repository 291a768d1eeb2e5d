using BlkTapCtrl.Diagnostics.LogFile;
using BlkTapCtrl.Diagnostics.Stats;
using BlkTapCtrl.Diagnostics.Syslog;
using BlkTapCtrl.Worker.Scheduling;
using BlkTapCtrl.Worker.Server;

namespace BlkTapCtrl.Worker.Logging;

/// <summary>
/// Wires tapdisk's diagnostics into the server (reference §3.8): the worker's log lines go to
/// <c>TAPDISK.&lt;pid&gt;.tmp</c>; every error goes to that file and to the non-blocking syslog client at once;
/// the syslog socket is watched for WRITE readiness by the event loop only while packets are queued (a stalled
/// syslog daemon never blocks the datapath, and there is no thread); a debug dump (SIGUSR1, watchdog) makes
/// the log precious and writes the stats snapshot <c>TAPDISK.&lt;pid&gt;.stats.json</c>, which is also
/// refreshed every second while counters move. Dispose keeps or deletes the log and reports the syslog totals.
/// <para>
/// No periodic wake-up when nothing happens: the log file's flush timer runs only while lines wait in its buffer,
/// and the stats timer stops once a refresh finds nothing changed and restarts on the next pass that changed
/// something — an idle tapdisk sleeps in its wait until real work (or a real deadline) comes.
/// </para>
/// </summary>
public sealed class WorkerDiagnostics : IDisposable
{
    private readonly TapdiskServer _server;
    private readonly SyslogClient _syslog;
    private readonly TapdiskLogFile? _logFile;
    private readonly int _writableEvent;
    private readonly int _statsEvent;
    private readonly int _flushEvent;
    private bool _statsArmed = true;
    private bool _flushArmed;
    private long _lastStatsFingerprint = -1;
    private bool _disposed;

    public WorkerDiagnostics(TapdiskServer server, WorkerDiagnosticsOptions options)
    {
        _server = server;
        var log = server.Log;
        _syslog = new SyslogClient(new SyslogClientOptions
        {
            SocketPath = options.SyslogSocket, Ident = "tapdisk", Facility = options.Facility,
        });
        try
        {
            _logFile = new TapdiskLogFile(options.LogDir, Environment.ProcessId, (TlogLevel)(int)log.Threshold, _syslog);
            StatsPath = Path.Combine(options.LogDir, $"TAPDISK.{Environment.ProcessId}.stats.json");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // No log directory is no reason to refuse a disk: keep stderr and say so on syslog.
            _syslog.Log(SyslogSeverity.Warning, $"tapdisk: cannot create log file in {options.LogDir}: {e.Message}");
        }

        // Without a log file the sink stays stderr, so echoing would print every line twice.
        var echo = _logFile == null ? null : options.EchoTo;
        if (_logFile is { } file)
            log.Sink = echo == null
                ? (level, line) => file.WriteLine((TlogLevel)(int)level, line)
                : (level, line) => { file.WriteLine((TlogLevel)(int)level, line); echo.WriteLine(line); };
        var fallback = log.Sink;
        log.ErrorSink = (errno, function, line) =>
        {
            if (_logFile is { } f)
            {
                f.ErrorLine(errno, function, line);
                echo?.WriteLine(line);
            }
            else
            {
                fallback?.Invoke(WorkerLog.Level.Warn, line);
                _syslog.Log(SyslogSeverity.Error, line);
            }
        };
        log.PreciousRequested = OnDebugDump;
        // Errors on the datapath are queued for syslog and leave together when the pass ends (one sendmmsg).
        if (_logFile != null)
            _logFile.SyslogFlushedByLoop = true;
        server.IterationEnded = OnIterationEnded;

        // WRITE interest only while the ring holds packets: masked otherwise, so the fd is not even polled.
        _writableEvent = server.Loop.Register(EventMode.Write, _syslog.FileDescriptor, 0,
            static (_, _, s) => ((WorkerDiagnostics)s!)._syslog.OnWritable(), this);
        server.Loop.Mask(_writableEvent, true);
        _syslog.WantsWritableChanged += wants => _server.Loop.Mask(_writableEvent, !wants);
        _statsEvent = StatsPath == null ? 0 : server.Loop.Register(EventMode.Timeout, -1, options.StatsIntervalMicroseconds,
            static (_, _, s) => ((WorkerDiagnostics)s!).RefreshStats(), this);
        // Buffered log lines reach the file within this interval (a burst of lines costs one write()).
        _flushEvent = _logFile == null ? 0 : server.Loop.Register(EventMode.Timeout, -1, options.LogFlushIntervalMicroseconds,
            static (_, _, s) => ((WorkerDiagnostics)s!).FlushLogFile(), this);
        server.Loop.Mask(_flushEvent, true);
    }

    public SyslogClient Syslog => _syslog;

    public TapdiskLogFile? LogFile => _logFile;

    /// <summary>The stats snapshot file, or null without a log directory.</summary>
    public string? StatsPath { get; }

    /// <summary>The snapshot operators read (tap-ctl stats): counters, queues, log, syslog, buckets, wake-ups.</summary>
    public TapdiskStats Snapshot()
    {
        long now = _server.Clock.NowMicroseconds;
        var vbds = new List<VbdStats>();
        foreach (var v in _server.Vbds)
        {
            var c = v.Counters;
            vbds.Add(new VbdStats
            {
                Cookie = v.Cookie, Flags = v.Flags.ToString(),
                Received = c.Received, Returned = c.Returned, Errors = c.Errors, Retries = c.Retries,
                KicksIn = c.KicksIn, KicksOut = c.KicksOut, Kicked = c.Kicked,
                New = v.NewCount, Pending = v.PendingCount, Failed = v.FailedCount, Completed = v.CompletedCount,
                IdleMicroseconds = Math.Max(0, now - v.LastProgress),
                Images = v.Chain is { } chain ? chain.Images.Select(i => i.ToString()).ToList() : [],
            });
        }
        var buckets = new List<ErrorBucketStats>();
        if (_logFile != null)
        {
            foreach (var b in _logFile.Buckets.Snapshot())
            {
                var o = b.Occurrences;
                buckets.Add(new ErrorBucketStats(b.Errno, b.Origin, o.Count, o.Min.Seconds, o.Min.Microseconds,
                    o.Max.Seconds, o.Max.Microseconds, o.StandardDeviation, b.FirstMessage));
            }
        }
        return new TapdiskStats
        {
            Pid = Environment.ProcessId,
            Time = DateTimeOffset.UtcNow,
            Vbds = vbds,
            Log = _logFile == null ? null : new LogFileStats(_logFile.CurrentPath, _logFile.Errors, _logFile.IsPrecious),
            Syslog = new SyslogStats(_syslog.SocketPath, _syslog.Statistics),
            ErrorBuckets = buckets,
            ErrorBucketsDropped = _logFile?.Buckets.Dropped ?? 0,
            Wakeups = _server.Loop.Wakeups.Count,
            WakeupDump = _server.Loop.Wakeups.Dump(_server.DebugIndexLines?.Invoke() ?? []),
        };
    }

    /// <summary>Writes the snapshot file atomically (readers never see half a file).</summary>
    public void WriteStats()
    {
        if (StatsPath == null)
            return;
        try
        {
            var tmp = StatsPath + ".tmp";
            File.WriteAllBytes(tmp, TapdiskStatsJson.Serialize(Snapshot()));
            File.Move(tmp, StatsPath, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _server.Log.Warn("tapdisk_stats", $"cannot write {StatsPath}: {e.Message}");
        }
    }

    /// <summary>
    /// The loop is dying of an unhandled exception: log it as an error (so the log file is kept), send it and
    /// everything queued to syslog now, write the buffered lines and close the log. Meant for an exception filter
    /// that returns false: it runs before the runtime ends the process (which runs no finally blocks for an
    /// unhandled exception), and the crash itself goes on as it would. Always returns false.
    /// </summary>
    public bool RecordCrash(Exception e)
    {
        try
        {
            _server.Log.Error(0, "tapdisk_server_run", $"unhandled {e.GetType().FullName}: {e.Message}; closing the log");
            _syslog.Flush();
            _logFile?.Close();
        }
        catch (Exception)
        {
            // Reporting the crash must never replace it with another exception.
        }
        return false;
    }

    private void OnDebugDump()
    {
        _logFile?.MakePrecious();
        WriteStats();
    }

    /// <summary>
    /// End of every loop pass: send the syslog lines the pass queued, start the log file's flush timer when lines
    /// wait in its buffer, restart the stats timer when something changed since it stopped. Two flag checks on a
    /// busy pass.
    /// </summary>
    private void OnIterationEnded()
    {
        _syslog.Flush();
        if (!_flushArmed && _logFile is { HasBufferedLines: true })
        {
            _flushArmed = true;
            _server.Loop.ResetTimeout(_flushEvent);
            _server.Loop.Mask(_flushEvent, false);
        }
        if (!_statsArmed && _statsEvent != 0 && StatsFingerprint() != _lastStatsFingerprint)
        {
            _statsArmed = true;
            _server.Loop.ResetTimeout(_statsEvent);
            _server.Loop.Mask(_statsEvent, false);
        }
    }

    private void FlushLogFile()
    {
        _logFile?.Flush();
        _flushArmed = false;
        _server.Loop.Mask(_flushEvent, true);
    }

    private long StatsFingerprint()
    {
        long fingerprint = _server.Vbds.Count;
        foreach (var v in _server.Vbds)
            fingerprint = fingerprint * 31 + v.Counters.Received + v.Counters.Returned + v.Counters.Errors + v.NewCount + v.PendingCount
                          + (long)v.Flags + System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(v.Chain); // open, pause, resume show at once
        return fingerprint * 31 + _syslog.Statistics.Messages;
    }

    private void RefreshStats()
    {
        long fingerprint = StatsFingerprint();
        if (fingerprint == _lastStatsFingerprint)
        {
            // Nothing moved for a whole interval: stop waking up; the next pass that changes something restarts it.
            _statsArmed = false;
            _server.Loop.Mask(_statsEvent, true);
            return;
        }
        _lastStatsFingerprint = fingerprint;
        WriteStats();
    }

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        _server.Loop.Unregister(_writableEvent);
        _server.Loop.Unregister(_statsEvent);
        _server.Loop.Unregister(_flushEvent);
        var log = _server.Log;
        log.ErrorSink = null;
        log.PreciousRequested = null;
        _server.IterationEnded = null;
        log.Sink = static (_, line) => Console.Error.WriteLine(line);
        _logFile?.Close();
        if (StatsPath != null)
        {
            try { File.Delete(StatsPath); }
            catch (IOException) { }
        }
        _syslog.Dispose();   // close report, then waits briefly for a slow daemon to take what is queued
    }
}
