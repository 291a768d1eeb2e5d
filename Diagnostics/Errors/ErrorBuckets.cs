using System.Globalization;
using System.Text;
using BlkTapCtrl.Diagnostics.Text;

namespace BlkTapCtrl.Diagnostics.Errors;

/// <summary>
/// Groups repeated errors by (|errno|, origin) so an operator can tell a transient fault from a recurrent one
/// (CA-27472): at most <see cref="Capacity"/> buckets, each with its first message and the timing of every
/// occurrence; errors that find no free bucket are counted as dropped. Reported on close and in debug dumps.
/// This is in addition to, never instead of, logging each error at once (CA-34846).
/// </summary>
public sealed class ErrorBuckets
{
    public const int DefaultCapacity = 16;

    private readonly List<ErrorBucket> _buckets;
    private readonly Lock _gate = new();

    public ErrorBuckets(int capacity = DefaultCapacity)
    {
        if (capacity < 1)
            throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "need at least one error bucket");
        Capacity = capacity;
        _buckets = new List<ErrorBucket>(capacity);
    }

    public int Capacity { get; }

    /// <summary>Errors that arrived when every bucket was taken by another (errno, origin).</summary>
    public long Dropped { get; private set; }

    public IReadOnlyList<ErrorBucket> Snapshot()
    {
        lock (_gate)
            return _buckets.ToArray();
    }

    /// <summary>Records one error; allocates only when it opens a new bucket.</summary>
    public void Add(int errno, ReadOnlySpan<char> origin, ReadOnlySpan<char> message, Timeval at)
    {
        errno = Math.Abs(errno);
        lock (_gate)
        {
            foreach (var bucket in _buckets)
            {
                if (bucket.Errno == errno && origin.SequenceEqual(bucket.Origin))
                {
                    bucket.Occurrences.Add(at);
                    return;
                }
            }
            if (_buckets.Count == Capacity)
            {
                Dropped++;
                return;
            }
            var first = message.Length > ErrorBucket.MaxMessageChars ? message[..ErrorBucket.MaxMessageChars] : message;
            var added = new ErrorBucket(errno, origin.ToString(), first.ToString());
            added.Occurrences.Add(at);
            _buckets.Add(added);
        }
    }

    /// <summary>
    /// The report lines: <c>TAPDISK ERROR: errno E at F (cnt = N): [first/last/stdev] msg</c> per bucket, with
    /// first/last as <c>Mmm dd HH:MM:SS.uuuuuu</c> in <paramref name="zone"/> and stdev as <c>S.mmm</c>, then
    /// <c>N other error messages dropped</c> when any were.
    /// </summary>
    public IReadOnlyList<string> Report(TimeZoneInfo zone)
    {
        var lines = new List<string>();
        lock (_gate)
        {
            foreach (var b in _buckets)
            {
                var o = b.Occurrences;
                lines.Add(string.Create(CultureInfo.InvariantCulture,
                    $"TAPDISK ERROR: errno {b.Errno} at {b.Origin} (cnt = {o.Count}): [{Stamp(o.Min, zone)}/{Stamp(o.Max, zone)}/{o.StandardDeviation:0.000}] {b.FirstMessage}"));
            }
            if (Dropped > 0)
                lines.Add(string.Create(CultureInfo.InvariantCulture, $"{Dropped} other error messages dropped"));
        }
        return lines;
    }

    /// <summary><c>Mmm dd HH:MM:SS.uuuuuu</c> of an absolute time, exact to the microsecond.</summary>
    public static string Stamp(Timeval at, TimeZoneInfo zone)
    {
        var local = TimeZoneInfo.ConvertTime(at.ToDateTimeOffset(), zone).DateTime;
        Span<byte> buf = stackalloc byte[AsciiTime.MonthDayTimeLength + 7];
        AsciiTime.WriteMonthDayTime(buf, local);
        buf[AsciiTime.MonthDayTimeLength] = (byte)'.';
        AsciiTime.WriteDigits(buf[(AsciiTime.MonthDayTimeLength + 1)..], at.Microseconds, 6);
        return Encoding.ASCII.GetString(buf);
    }
}
