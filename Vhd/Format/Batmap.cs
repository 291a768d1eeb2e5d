using System.Buffers.Binary;

namespace BlkTapCtrl.Vhd.Format;

/// <summary>
/// blktap's batmap extension: a one-sector header ("tdbatmap") right after the BAT, followed by a
/// bitmap with one bit per block that is set when every sector of the block is written, so reads of
/// full blocks need no sector bitmap. Bit order as the sector bitmaps (0x80 first).
/// </summary>
public sealed class BatmapHeader
{
    public const int Size = 512;
    public const uint Version11 = 0x00010001, Version12 = 0x00010002, CurrentVersion = Version12;
    public static ReadOnlySpan<byte> CookieValue => "tdbatmap"u8;

    public byte[] Cookie { get; set; } = CookieValue.ToArray();
    public ulong BatmapOffset { get; set; }
    /// <summary>Sectors of the batmap bitmap.</summary>
    public uint BatmapSize { get; set; }
    public uint BatmapVersion { get; set; } = CurrentVersion;
    public uint Checksum { get; set; }
    public byte Marker { get; set; }

    public bool HasValidCookie => Cookie.AsSpan().SequenceEqual(CookieValue);

    /// <summary>Sectors of batmap for a BAT of <paramref name="maxBatSize"/> entries.</summary>
    public static uint SectorsFor(uint maxBatSize) => Math.Max(1u, (uint)(((maxBatSize + 7UL) / 8 + 511) / 512));

    /// <summary>Where the batmap header sits: the sector after the (512-byte padded) BAT.</summary>
    public static ulong HeaderOffsetFor(ulong tableOffset, uint maxBatSize) =>
        tableOffset + ((ulong)maxBatSize * 4 + 511) / 512 * 512;

    public static BatmapHeader Parse(ReadOnlySpan<byte> b) => new()
    {
        Cookie = b[..8].ToArray(),
        BatmapOffset = BinaryPrimitives.ReadUInt64BigEndian(b[8..]),
        BatmapSize = BinaryPrimitives.ReadUInt32BigEndian(b[16..]),
        BatmapVersion = BinaryPrimitives.ReadUInt32BigEndian(b[20..]),
        Checksum = BinaryPrimitives.ReadUInt32BigEndian(b[24..]),
        Marker = b[28],
    };

    public void WriteTo(Span<byte> b)
    {
        b[..Size].Clear();
        Cookie.AsSpan(0, 8).CopyTo(b);
        BinaryPrimitives.WriteUInt64BigEndian(b[8..], BatmapOffset);
        BinaryPrimitives.WriteUInt32BigEndian(b[16..], BatmapSize);
        BinaryPrimitives.WriteUInt32BigEndian(b[20..], BatmapVersion);
        BinaryPrimitives.WriteUInt32BigEndian(b[24..], Checksum);
        b[28] = Marker;
    }

    /// <summary>
    /// The batmap checksum: inverted byte sum over max(1, ceil((size &gt;&gt; 24) / 512)) sectors of the map
    /// (never more than the map holds); version 1.1 summed signed bytes.
    /// </summary>
    public uint ComputeChecksum(ReadOnlySpan<byte> map, ulong currentSize)
    {
        long sectors = Math.Max(1L, (long)(((currentSize >> 24) + 511) / 512));
        int bytes = (int)Math.Min(map.Length, sectors * 512);
        return BatmapVersion == Version11 ? VhdChecksum.ComputeSigned(map[..bytes]) : VhdChecksum.Compute(map[..bytes]);
    }
}
