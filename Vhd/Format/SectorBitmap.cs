using System.Numerics;

namespace BlkTapCtrl.Vhd.Format;

/// <summary>
/// Bit operations on VHD sector bitmaps and the batmap: item i is bit 0x80 &gt;&gt; (i mod 8) of byte i/8.
/// (Creator `tap` 0.1 wrote little-endian 32-bit words instead; <see cref="FromLegacyWords"/> converts.)
/// </summary>
public static class SectorBitmap
{
    public static bool Test(ReadOnlySpan<byte> map, int i) => (map[i >> 3] & (0x80 >> (i & 7))) != 0;

    public static void Set(Span<byte> map, int i) => map[i >> 3] |= (byte)(0x80 >> (i & 7));

    public static void Clear(Span<byte> map, int i) => map[i >> 3] &= (byte)~(0x80 >> (i & 7));

    public static void SetRange(Span<byte> map, int first, int count)
    {
        int i = first, end = first + count;
        for (; i < end && (i & 7) != 0; i++) Set(map, i);
        int wholeBytes = (end - i) >> 3;
        if (wholeBytes > 0)
        {
            map.Slice(i >> 3, wholeBytes).Fill(0xff);
            i += wholeBytes << 3;
        }
        for (; i < end; i++) Set(map, i);
    }

    /// <summary>Length of the run of items equal to item <paramref name="first"/>, at most <paramref name="max"/>.</summary>
    public static int RunLength(ReadOnlySpan<byte> map, int first, int max)
    {
        bool value = Test(map, first);
        int i = first + 1, end = first + max;
        while (i < end)
        {
            if ((i & 7) == 0 && end - i >= 8)
            {
                byte b = map[i >> 3];
                if (b == (value ? 0xff : 0x00)) { i += 8; continue; }
            }
            if (Test(map, i) != value) break;
            i++;
        }
        return i - first;
    }

    /// <summary>True when the first <paramref name="count"/> items are all set.</summary>
    public static bool AllSet(ReadOnlySpan<byte> map, int count)
    {
        int whole = count >> 3;
        if (map[..whole].ContainsAnyExcept((byte)0xff)) return false;
        for (int i = whole << 3; i < count; i++)
            if (!Test(map, i)) return false;
        return true;
    }

    public static bool AnySet(ReadOnlySpan<byte> map, int count)
    {
        int whole = count >> 3;
        if (map[..whole].ContainsAnyExcept((byte)0)) return true;
        for (int i = whole << 3; i < count; i++)
            if (Test(map, i)) return true;
        return false;
    }

    public static int PopCount(ReadOnlySpan<byte> map, int count)
    {
        int n = 0;
        for (int i = 0; i < count >> 3; i++) n += BitOperations.PopCount(map[i]);
        for (int i = count & ~7; i < count; i++) if (Test(map, i)) n++;
        return n;
    }

    /// <summary>Converts a `tap` 0.1 bitmap (little-endian 32-bit words, bit i of word i/32) in place.</summary>
    public static void FromLegacyWords(Span<byte> map)
    {
        for (int w = 0; w + 4 <= map.Length; w += 4)
        {
            uint word = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(map[w..]);
            for (int bit = 0; bit < 32; bit++)
            {
                int i = w * 8 + bit;
                if ((word & (1u << bit)) != 0) Set(map, i); else Clear(map, i);
            }
        }
    }
}
