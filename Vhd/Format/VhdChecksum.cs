namespace BlkTapCtrl.Vhd.Format;

/// <summary>VHD checksums: the ones' complement of the 32-bit sum of the bytes.</summary>
public static class VhdChecksum
{
    /// <summary>Sum of <paramref name="data"/> with the 4 bytes at <paramref name="skipAt"/> read as zero, inverted.</summary>
    public static uint Compute(ReadOnlySpan<byte> data, int skipAt = -1)
    {
        uint sum = 0;
        for (int i = 0; i < data.Length; i++)
            sum += data[i];
        if (skipAt >= 0)
            for (int i = skipAt; i < skipAt + 4; i++)
                sum -= data[i];
        return ~sum;
    }

    /// <summary>Version 1.1 batmaps summed the bytes as signed chars.</summary>
    public static uint ComputeSigned(ReadOnlySpan<byte> data)
    {
        uint sum = 0;
        for (int i = 0; i < data.Length; i++)
            sum += (uint)(sbyte)data[i];
        return ~sum;
    }
}
