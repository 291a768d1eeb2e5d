namespace BlkTapCtrl.Vhd.Format;

/// <summary>
/// VHD timestamps: seconds since 2000-01-01 00:00:00 <b>UTC</b>. The original used a local-time epoch
/// (reference §6 item 7), so images moved between time zones disagreed; we always use UTC.
/// </summary>
public static class VhdTimestamp
{
    public static readonly DateTime Epoch = new(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc);

    public static uint FromDateTime(DateTime time)
    {
        var seconds = (long)Math.Floor((time.ToUniversalTime() - Epoch).TotalSeconds);
        return seconds <= 0 ? 0u : seconds >= uint.MaxValue ? uint.MaxValue : (uint)seconds;
    }

    public static uint Now() => FromDateTime(DateTime.UtcNow);

    public static DateTime ToDateTime(uint timestamp) => Epoch.AddSeconds(timestamp);

    /// <summary>The C library's ctime() text without the newline, e.g. "Sat Jan  1 00:00:00 2000".</summary>
    public static string ToCTimeString(uint timestamp)
    {
        var t = ToDateTime(timestamp);
        return $"{t.DayOfWeek.ToString()[..3]} {Months[t.Month - 1]} {t.Day,2} {t:HH:mm:ss} {t.Year}";
    }

    private static readonly string[] Months =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
}
