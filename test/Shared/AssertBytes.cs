using NUnit.Framework;

namespace BlkTapCtrl.Testing;

/// <summary>
/// Byte-for-byte comparison of large buffers (images, whole files). NUnit's collection equality walks
/// megabytes element by element through object comparisons and takes seconds; this compares with
/// vectorised span equality and, on a mismatch, names the first differing offset and both lengths.
/// </summary>
public static class AssertBytes
{
    public static void Equal(ReadOnlySpan<byte> expected, ReadOnlySpan<byte> actual, string what = "bytes")
    {
        if (actual.SequenceEqual(expected))
            return;
        int at = actual.CommonPrefixLength(expected);
        string detail = at < Math.Min(expected.Length, actual.Length)
            ? $"first difference at byte {at} (sector {at / 512}): expected 0x{expected[at]:x2}, got 0x{actual[at]:x2}"
            : "one is a prefix of the other";
        Assert.Fail($"{what} differ: expected {expected.Length} bytes, got {actual.Length}; {detail}");
    }

    /// <summary>Two files have identical content.</summary>
    public static void SameFile(string expectedPath, string actualPath) =>
        Equal(File.ReadAllBytes(expectedPath), File.ReadAllBytes(actualPath), $"{actualPath} and {expectedPath}");
}
