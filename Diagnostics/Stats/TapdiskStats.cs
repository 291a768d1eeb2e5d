using BlkTapCtrl.Diagnostics.Syslog;

namespace BlkTapCtrl.Diagnostics.Stats;

/// <summary>
/// What a running tapdisk reports about itself, for operators (<c>tap-ctl stats</c>) and the controller:
/// per-VBD counters and queue lengths, the log file, the syslog client, the error buckets and the wake-up ring.
/// Serialised by <see cref="TapdiskStatsJson"/>; the JSON shape is documented in docs/tapdisk-stats.md.
/// </summary>
public sealed record TapdiskStats
{
    /// <summary>Version of the JSON shape; bumped on incompatible changes.</summary>
    public const int CurrentVersion = 1;

    public int Version { get; init; } = CurrentVersion;
    public int Pid { get; init; }
    /// <summary>When the snapshot was taken (UTC, microseconds).</summary>
    public DateTimeOffset Time { get; init; }
    public IReadOnlyList<VbdStats> Vbds { get; init; } = [];
    public LogFileStats? Log { get; init; }
    public SyslogStats? Syslog { get; init; }
    public IReadOnlyList<ErrorBucketStats> ErrorBuckets { get; init; } = [];
    public long ErrorBucketsDropped { get; init; }
    /// <summary>Loop wake-ups since start; the ring keeps the last 128.</summary>
    public long Wakeups { get; init; }
    /// <summary>The wake-up ring as the debug dump prints it (index lines, then 8 entries per line).</summary>
    public IReadOnlyList<string> WakeupDump { get; init; } = [];
}

/// <summary>One VBD: the §3.5 counters, its request lists' lengths and how long since it last made progress.</summary>
public sealed record VbdStats
{
    public int Cookie { get; init; }
    public string Flags { get; init; } = "";
    public long Received { get; init; }
    public long Returned { get; init; }
    public long Errors { get; init; }
    public long Retries { get; init; }
    public long KicksIn { get; init; }
    public long KicksOut { get; init; }
    public long Kicked { get; init; }
    public int New { get; init; }
    public int Pending { get; init; }
    public int Failed { get; init; }
    public int Completed { get; init; }
    /// <summary>Microseconds since the VBD last made progress.</summary>
    public long IdleMicroseconds { get; init; }
    /// <summary>The image chain the VBD has open, leaf first, each as <c>type:path</c>; empty while closed or paused.</summary>
    public IReadOnlyList<string> Images { get; init; } = [];
}

public sealed record LogFileStats(string Path, long Errors, bool Precious);

public sealed record SyslogStats(string Socket, SyslogStatistics Counters);

/// <summary>An error bucket; first/last as exact epoch times (seconds and microseconds).</summary>
public sealed record ErrorBucketStats(int Errno, string Origin, long Count, long FirstSeconds, int FirstMicroseconds,
    long LastSeconds, int LastMicroseconds, double StdevSeconds, string Message);
