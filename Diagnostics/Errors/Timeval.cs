namespace BlkTapCtrl.Diagnostics.Errors;

/// <summary>
/// A struct timeval: whole seconds since the epoch plus microseconds, always normalised to
/// 0 ≤ <see cref="Microseconds"/> &lt; 1 000 000 (so −2.5 s is {−3, 500000}). Integer arithmetic only: an
/// absolute epoch time in a double keeps just ~0.2 µs of precision, and the error-bucket mean must be exact.
/// </summary>
public readonly record struct Timeval
{
    public const long MicrosPerSecond = 1_000_000;

    public Timeval(long seconds, long microseconds)
    {
        seconds += microseconds / MicrosPerSecond;
        microseconds %= MicrosPerSecond;
        if (microseconds < 0)
        {
            seconds--;
            microseconds += MicrosPerSecond;
        }
        Seconds = seconds;
        Microseconds = (int)microseconds;
    }

    public long Seconds { get; }

    public int Microseconds { get; }

    public static Timeval FromDateTimeOffset(DateTimeOffset time)
    {
        long ticks = time.UtcTicks - DateTime.UnixEpoch.Ticks;
        return new Timeval(ticks / TimeSpan.TicksPerSecond, ticks % TimeSpan.TicksPerSecond / 10);
    }

    public DateTimeOffset ToDateTimeOffset() =>
        new(DateTime.UnixEpoch.Ticks + Seconds * TimeSpan.TicksPerSecond + Microseconds * 10L, TimeSpan.Zero);

    public static Timeval operator +(Timeval a, Timeval b) => new(a.Seconds + b.Seconds, (long)a.Microseconds + b.Microseconds);

    public static Timeval operator -(Timeval a, Timeval b) => new(a.Seconds - b.Seconds, (long)a.Microseconds - b.Microseconds);

    /// <summary>
    /// Divides by a positive count the way the original did, seconds first with the remainder carried into the
    /// microseconds (so no intermediate overflows however large the seconds); rounds toward zero.
    /// </summary>
    public static Timeval operator /(Timeval a, long divisor)
    {
        if (divisor <= 0)
            throw new ArgumentOutOfRangeException(nameof(divisor), divisor, "timeval divisor must be positive");
        long seconds = a.Seconds / divisor;
        long remainder = a.Seconds % divisor;
        long micros = (remainder * MicrosPerSecond + a.Microseconds) / divisor;
        return new Timeval(seconds, micros);
    }

    public static bool operator <(Timeval a, Timeval b) => a.CompareTo(b) < 0;

    public static bool operator >(Timeval a, Timeval b) => a.CompareTo(b) > 0;

    public int CompareTo(Timeval other) =>
        Seconds != other.Seconds ? Seconds.CompareTo(other.Seconds) : Microseconds.CompareTo(other.Microseconds);

    /// <summary>A difference as seconds in a double: fine for spreads (small), never used for absolute times.</summary>
    public double ToSecondsDouble() => Seconds + Microseconds / (double)MicrosPerSecond;

    public override string ToString() => $"{Seconds}.{Microseconds:D6}";
}
