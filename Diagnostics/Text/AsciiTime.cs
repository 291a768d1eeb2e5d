namespace BlkTapCtrl.Diagnostics.Text;

/// <summary>
/// Writes the fixed-width time stamps of syslog packets, the tapdisk log file and error reports straight into
/// byte spans: no culture lookup, no allocation, identical on every host.
/// </summary>
public static class AsciiTime
{
    private static ReadOnlySpan<byte> MonthNames => "JanFebMarAprMayJunJulAugSepOctNovDec"u8;

    /// <summary>Length of <c>Mmm dd HH:MM:SS</c>.</summary>
    public const int MonthDayTimeLength = 15;

    /// <summary>
    /// <c>Mmm dd HH:MM:SS</c> with the day space-padded ("Nov  5"), as RFC 3164 and the original log file
    /// write it. Returns the bytes written (15).
    /// </summary>
    public static int WriteMonthDayTime(Span<byte> dest, DateTime time)
    {
        MonthNames.Slice((time.Month - 1) * 3, 3).CopyTo(dest);
        dest[3] = (byte)' ';
        dest[4] = time.Day < 10 ? (byte)' ' : (byte)('0' + time.Day / 10);
        dest[5] = (byte)('0' + time.Day % 10);
        dest[6] = (byte)' ';
        WriteTime(dest[7..], time);
        return MonthDayTimeLength;
    }

    /// <summary><c>HH:MM:SS</c>; returns 8.</summary>
    public static int WriteTime(Span<byte> dest, DateTime time)
    {
        WriteDigits(dest, time.Hour, 2);
        dest[2] = (byte)':';
        WriteDigits(dest[3..], time.Minute, 2);
        dest[5] = (byte)':';
        WriteDigits(dest[6..], time.Second, 2);
        return 8;
    }

    /// <summary><c>HH:MM:SS.mmm</c>; returns 12.</summary>
    public static int WriteTimeMillis(Span<byte> dest, DateTime time)
    {
        WriteTime(dest, time);
        dest[8] = (byte)'.';
        WriteDigits(dest[9..], time.Millisecond, 3);
        return 12;
    }

    /// <summary>Zero-padded decimal of exactly <paramref name="width"/> digits (value must fit).</summary>
    public static void WriteDigits(Span<byte> dest, long value, int width)
    {
        for (int i = width - 1; i >= 0; i--)
        {
            dest[i] = (byte)('0' + value % 10);
            value /= 10;
        }
    }

    /// <summary>The month-day-time stamp as a string, for reports built once (not on the hot path).</summary>
    public static string MonthDayTime(DateTime time)
    {
        Span<byte> buf = stackalloc byte[MonthDayTimeLength];
        WriteMonthDayTime(buf, time);
        return System.Text.Encoding.ASCII.GetString(buf);
    }
}
