using System.Buffers.Binary;

namespace BlkTapCtrl.Vhd.Format;

/// <summary>
/// The BAT: one big-endian u32 per block, the sector offset of the block's bitmap (data follows the
/// bitmap), or <see cref="Unused"/>. On disk it is padded with zeros to whole sectors.
/// </summary>
public static class BlockAllocationTable
{
    public const uint Unused = 0xFFFFFFFF;
    /// <summary>Entries per 512-byte BAT sector (blktap writes one sector per allocation).</summary>
    public const int EntriesPerSector = 128;

    public static int SizeBytes(uint entries) => (int)(((ulong)entries * 4 + 511) / 512 * 512);

    public static uint[] Parse(ReadOnlySpan<byte> b, uint entries)
    {
        if ((ulong)b.Length < (ulong)entries * 4)
            throw new VhdFormatException("BAT length", b.Length, $"{entries} entries need {(ulong)entries * 4} bytes");
        var bat = new uint[entries];
        for (int i = 0; i < bat.Length; i++)
            bat[i] = BinaryPrimitives.ReadUInt32BigEndian(b[(i * 4)..]);
        return bat;
    }

    /// <summary>Encodes entries [first, first+count) into <paramref name="b"/> (entries beyond the table as 0).</summary>
    public static void Write(ReadOnlySpan<uint> bat, Span<byte> b, int first = 0)
    {
        b.Clear();
        int n = Math.Min(b.Length / 4, bat.Length - first);
        for (int i = 0; i < n; i++)
            BinaryPrimitives.WriteUInt32BigEndian(b[(i * 4)..], bat[first + i]);
    }
}
