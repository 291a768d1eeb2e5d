namespace BlkTapCtrl.Testing;

/// <summary>Test data: reproducible random bytes, and a byte range of a file another process may still have open.</summary>
public static class TestBytes
{
    /// <summary><paramref name="length"/> bytes from a seeded generator: the same seed gives the same data.</summary>
    public static byte[] Pattern(int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    /// <summary>Reads exactly <paramref name="length"/> bytes at <paramref name="offset"/> (shared read, so a running tapdisk may hold it).</summary>
    public static byte[] FileRange(string path, long offset, int length)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        f.Position = offset;
        var b = new byte[length];
        f.ReadExactly(b);
        return b;
    }
}
