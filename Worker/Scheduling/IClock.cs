using System.Diagnostics;

namespace BlkTapCtrl.Worker.Scheduling;

/// <summary>
/// The worker's monotonic time in microseconds. Engine tests use <see cref="VirtualClock"/> so the
/// 120 s request timeout and 1 s retry interval run in virtual time instead of real seconds.
/// </summary>
public interface IClock
{
    long NowMicroseconds { get; }

    /// <summary>True when an idle wait should advance time instead of blocking.</summary>
    bool IsVirtual { get; }

    /// <summary>Moves virtual time forward (no-op for the real clock).</summary>
    void Advance(long microseconds);

    /// <summary>Blocks for the open/resume retry interval (virtual clocks just advance).</summary>
    void Sleep(long microseconds);
}

public sealed class MonotonicClock : IClock
{
    public static readonly MonotonicClock Instance = new();
    private static readonly double s_ticksToMicroseconds = 1_000_000.0 / Stopwatch.Frequency;

    public long NowMicroseconds => (long)(Stopwatch.GetTimestamp() * s_ticksToMicroseconds);
    public bool IsVirtual => false;
    public void Advance(long microseconds) { }
    public void Sleep(long microseconds) => Thread.Sleep(TimeSpan.FromMicroseconds(microseconds));
}

/// <summary>Time that moves only when the loop is idle (by the whole wait) or when a test advances it.</summary>
public sealed class VirtualClock(long startMicroseconds = 1_000_000) : IClock
{
    public long NowMicroseconds { get; private set; } = startMicroseconds;
    public bool IsVirtual => true;
    public void Advance(long microseconds) => NowMicroseconds += Math.Max(0, microseconds);
    public void Sleep(long microseconds) => Advance(microseconds);
}
