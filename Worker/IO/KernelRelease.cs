using System.Globalization;

namespace BlkTapCtrl.Worker.IO;

/// <summary>CA-36385: native AIO completions are signalled through an eventfd iff the kernel is ≥ 2.6.22.</summary>
public static class KernelRelease
{
    /// <summary>
    /// Parses the leading <c>%u.%u.%u</c> of a release string ("2.6.32.1-xen" ⇒ 2,6,32).
    /// Returns false when it does not start with three dot-separated numbers.
    /// </summary>
    public static bool TryParse(string release, out (uint Major, uint Minor, uint Patch) version)
    {
        version = default;
        var parts = new uint[3];
        int pos = 0;
        for (int i = 0; i < 3; i++)
        {
            int start = pos;
            while (pos < release.Length && char.IsAsciiDigit(release[pos])) pos++;
            if (pos == start || !uint.TryParse(release.AsSpan(start, pos - start), NumberStyles.None, CultureInfo.InvariantCulture, out parts[i]))
                return false;
            if (i < 2)
            {
                if (pos >= release.Length || release[pos] != '.') return false;
                pos++;
            }
        }
        version = (parts[0], parts[1], parts[2]);
        return true;
    }

    public static bool PrefersEventfd(string release) =>
        TryParse(release, out var v) && (v.Major, v.Minor, v.Patch).CompareTo((2u, 6u, 22u)) >= 0;

    public static string Current()
    {
        try { return File.ReadAllText("/proc/sys/kernel/osrelease").Trim(); }
        catch (IOException) { return ""; }
    }
}
