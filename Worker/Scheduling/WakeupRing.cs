using System.Globalization;
using System.Text;

namespace BlkTapCtrl.Worker.Scheduling;

/// <summary>
/// CA-27472 debug ring: the last 128 loop wake-ups, each a timestamp and a bitmask of the fds that
/// were ready (bit i = fd i; bit 0 = "an fd beyond the mask", since fds 0–2 are /dev/null).
/// </summary>
public sealed class WakeupRing
{
    public const int Capacity = 128;
    public const int EntriesPerLine = 8;

    private readonly long[] _times = new long[Capacity];
    private readonly ulong[] _masks = new ulong[Capacity];

    /// <summary>Wake-ups recorded since start (the ring keeps the last <see cref="Capacity"/>).</summary>
    public long Count { get; private set; }

    public static ulong MaskOf(int fd) => fd is > 0 and < 64 ? 1UL << fd : 1UL;

    public void Record(long timeMicroseconds, ulong readyMask)
    {
        int slot = (int)(Count % Capacity);
        _times[slot] = timeMicroseconds;
        _masks[slot] = readyMask;
        Count++;
    }

    /// <summary>
    /// The dump: index lines naming which bit is which fd (<paramref name="indexLines"/>, already
    /// formatted by the server), then the entries oldest first, 8 per line as
    /// <c>[first/count]: s.uuuuuu:mask …</c>, each time the delta to the previous entry.
    /// </summary>
    public IReadOnlyList<string> Dump(IEnumerable<string> indexLines)
    {
        var lines = new List<string>(indexLines);
        long first = Math.Max(0, Count - Capacity);
        long previous = 0;
        var line = new StringBuilder();
        for (long i = first; i < Count; i += EntriesPerLine)
        {
            long n = Math.Min(EntriesPerLine, Count - i);
            line.Clear().Append(CultureInfo.InvariantCulture, $"[{i}/{n}]:");
            for (long k = i; k < i + n; k++)
            {
                int slot = (int)(k % Capacity);
                long t = _times[slot];
                long delta = k == first ? t : t - previous;
                previous = t;
                line.Append(CultureInfo.InvariantCulture,
                    $" {delta / 1_000_000}.{delta % 1_000_000:D6}:{_masks[slot]:x}");
            }
            lines.Add(line.ToString());
        }
        return lines;
    }
}
