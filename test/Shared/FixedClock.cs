namespace BlkTapCtrl.Testing;

/// <summary>A clock pinned to one instant in UTC (local time = UTC), for exact time stamps in tests.</summary>
public sealed class FixedClock(DateTimeOffset now) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = now;

    public override DateTimeOffset GetUtcNow() => Now;

    public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;
}
