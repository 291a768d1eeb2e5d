namespace BlkTapCtrl.Diagnostics.Errors;

/// <summary>
/// Running count, min, max, mean and standard deviation of a series of time stamps (CA-27472): Welford's update
/// d1 = x − mean; mean' ; S += d1 · (x − mean'); stdev = √(S / (k − 1)), with absolute times only ever in
/// integers. The original updated the mean as mean += d1 / k in timevals, which truncates a little at every
/// step; we keep the exact sum of microseconds (Int128) instead, so the mean is exact to the microsecond for
/// any samples. Only deviations from the mean, which are small, go through doubles.
/// </summary>
public sealed class TimevalDispersion
{
    private double _sumSquares;
    private Int128 _sumMicros;

    public long Count { get; private set; }

    public Timeval Min { get; private set; }

    public Timeval Max { get; private set; }

    public Timeval Mean { get; private set; }

    /// <summary>Sample standard deviation in seconds (0 for fewer than two samples).</summary>
    public double StandardDeviation => Count > 1 ? Math.Sqrt(_sumSquares / (Count - 1)) : 0;

    public void Add(Timeval x)
    {
        Count++;
        _sumMicros += (Int128)x.Seconds * Timeval.MicrosPerSecond + x.Microseconds;
        if (Count == 1)
        {
            Min = Max = Mean = x;
            return;
        }
        if (x < Min)
            Min = x;
        if (x > Max)
            Max = x;
        var d1 = x - Mean;
        Mean = new Timeval(0, (long)(_sumMicros / Count));
        _sumSquares += d1.ToSecondsDouble() * (x - Mean).ToSecondsDouble();
    }
}
