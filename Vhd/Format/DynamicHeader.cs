using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace BlkTapCtrl.Vhd.Format;

/// <summary>
/// The 1024-byte dynamic-disk header ("cxsparse") at the footer's data offset: where the BAT is, the
/// block size, and for differencing disks the parent's UUID, modification time, name and locators.
/// </summary>
public sealed class DynamicHeader
{
    public const int Size = 1024;
    public const int LocatorCount = 8;
    public const int LocatorTableOffset = 576;
    public const uint CurrentVersion = 0x00010000;
    public static ReadOnlySpan<byte> CookieValue => "cxsparse"u8;

    public byte[] Cookie { get; set; } = CookieValue.ToArray();
    public ulong DataOffset { get; set; } = ulong.MaxValue;
    public ulong TableOffset { get; set; }
    public uint HeaderVersion { get; set; } = CurrentVersion;
    public uint MaxBatSize { get; set; }
    public uint BlockSize { get; set; } = VhdLimits.DefaultBlockSize;
    public uint Checksum { get; set; }
    public Guid ParentUuid { get; set; }
    public uint ParentTimestamp { get; set; }
    public uint Reserved1 { get; set; }
    /// <summary>512 bytes of UTF-16BE parent file name.</summary>
    public byte[] ParentNameBytes { get; set; } = new byte[512];
    public ParentLocator[] Locators { get; set; } = new ParentLocator[LocatorCount];
    public byte[] Reserved2 { get; set; } = new byte[256];

    public int SectorsPerBlock => (int)(BlockSize / 512);
    /// <summary>Sectors of the per-block sector bitmap: one bit per sector, rounded up to whole sectors.</summary>
    public int BitmapSectors => Math.Max(1, (SectorsPerBlock / 8 + 511) / 512);

    public string ParentName
    {
        get
        {
            var s = Encoding.BigEndianUnicode.GetString(ParentNameBytes);
            var nul = s.IndexOf('\0');
            return nul >= 0 ? s[..nul] : s;
        }
        set
        {
            var bytes = Encoding.BigEndianUnicode.GetBytes(value);
            if (bytes.Length > 512)
                throw new VhdFormatException("parent name", value, "longer than 256 UTF-16 characters");
            Array.Clear(ParentNameBytes);
            bytes.CopyTo(ParentNameBytes, 0);
        }
    }

    public static DynamicHeader Parse(ReadOnlySpan<byte> b)
    {
        if (b.Length < Size)
            throw new VhdFormatException("header length", b.Length, $"a dynamic header needs {Size} bytes");
        var h = new DynamicHeader
        {
            Cookie = b[..8].ToArray(),
            DataOffset = BinaryPrimitives.ReadUInt64BigEndian(b[8..]),
            TableOffset = BinaryPrimitives.ReadUInt64BigEndian(b[16..]),
            HeaderVersion = BinaryPrimitives.ReadUInt32BigEndian(b[24..]),
            MaxBatSize = BinaryPrimitives.ReadUInt32BigEndian(b[28..]),
            BlockSize = BinaryPrimitives.ReadUInt32BigEndian(b[32..]),
            Checksum = BinaryPrimitives.ReadUInt32BigEndian(b[36..]),
            ParentUuid = new Guid(b.Slice(40, 16), bigEndian: true),
            ParentTimestamp = BinaryPrimitives.ReadUInt32BigEndian(b[56..]),
            Reserved1 = BinaryPrimitives.ReadUInt32BigEndian(b[60..]),
            ParentNameBytes = b.Slice(64, 512).ToArray(),
            Reserved2 = b.Slice(768, 256).ToArray(),
        };
        for (int i = 0; i < LocatorCount; i++)
            h.Locators[i] = ParentLocator.Parse(b.Slice(LocatorTableOffset + i * ParentLocator.EntrySize));
        return h;
    }

    public void WriteTo(Span<byte> b, bool keepChecksum = false)
    {
        b[..Size].Clear();
        Cookie.AsSpan(0, 8).CopyTo(b);
        BinaryPrimitives.WriteUInt64BigEndian(b[8..], DataOffset);
        BinaryPrimitives.WriteUInt64BigEndian(b[16..], TableOffset);
        BinaryPrimitives.WriteUInt32BigEndian(b[24..], HeaderVersion);
        BinaryPrimitives.WriteUInt32BigEndian(b[28..], MaxBatSize);
        BinaryPrimitives.WriteUInt32BigEndian(b[32..], BlockSize);
        ParentUuid.TryWriteBytes(b.Slice(40, 16), bigEndian: true, out _);
        BinaryPrimitives.WriteUInt32BigEndian(b[56..], ParentTimestamp);
        BinaryPrimitives.WriteUInt32BigEndian(b[60..], Reserved1);
        ParentNameBytes.AsSpan(0, 512).CopyTo(b[64..]);
        for (int i = 0; i < LocatorCount; i++)
            Locators[i].WriteTo(b.Slice(LocatorTableOffset + i * ParentLocator.EntrySize));
        Reserved2.AsSpan(0, 256).CopyTo(b[768..]);
        if (!keepChecksum)
            Checksum = VhdChecksum.Compute(b[..Size], 36);
        BinaryPrimitives.WriteUInt32BigEndian(b[36..], Checksum);
    }

    public byte[] ToBytes(bool keepChecksum = false)
    {
        var b = new byte[Size];
        WriteTo(b, keepChecksum);
        return b;
    }

    public uint ComputeChecksum()
    {
        var b = new byte[Size];
        WriteTo(b, keepChecksum: true);
        return VhdChecksum.Compute(b, 36);
    }

    public DynamicHeader Clone()
    {
        var c = (DynamicHeader)MemberwiseClone();
        c.Cookie = (byte[])Cookie.Clone();
        c.ParentNameBytes = (byte[])ParentNameBytes.Clone();
        c.Locators = (ParentLocator[])Locators.Clone();
        c.Reserved2 = (byte[])Reserved2.Clone();
        return c;
    }

    /// <summary>
    /// Rules an open needs (cookie, checksum, version, block size, BAT bounds); throws naming the field.
    /// </summary>
    public void Validate(ulong currentSize)
    {
        if (!Cookie.AsSpan().SequenceEqual(CookieValue))
            throw new VhdFormatException("header cookie", Encoding.Latin1.GetString(Cookie), "expected 'cxsparse'");
        var computed = ComputeChecksum();
        if (computed != Checksum)
            throw new VhdFormatException("header checksum", Checksum, $"computed 0x{computed:x8}");
        if (HeaderVersion != CurrentVersion)
            throw new VhdFormatException("header version", HeaderVersion, "expected 0x00010000");
        if (BlockSize < 4096 || BlockSize > (256u << 20) || !BitOperations.IsPow2(BlockSize))
            throw new VhdFormatException("header block size", BlockSize, "must be a power of two from 4 KiB to 256 MiB");
        if (TableOffset % 512 != 0 || TableOffset < 512 || TableOffset > long.MaxValue / 4)
            throw new VhdFormatException("header table offset", TableOffset, "must be a sector-aligned offset");
        if (MaxBatSize > VhdLimits.MaxBatEntries)
            throw new VhdFormatException("header max BAT size", MaxBatSize, $"more than {VhdLimits.MaxBatEntries} entries");
        ulong needed = (currentSize + BlockSize - 1) / BlockSize;
        if (needed > MaxBatSize)
            throw new VhdFormatException("header max BAT size", MaxBatSize, $"too small for a disk of {currentSize} bytes ({needed} blocks)");
    }

    /// <summary>Every rule vhd-util check applies to the header, in its words (end of file for the BAT bound).</summary>
    public List<string> Problems(long fileSize)
    {
        var p = new List<string>();
        if (!Cookie.AsSpan().SequenceEqual(CookieValue))
            p.Add("invalid cookie");
        if (ComputeChecksum() != Checksum)
            p.Add("invalid checksum");
        if (HeaderVersion != CurrentVersion)
            p.Add("invalid header version");
        if (DataOffset != ulong.MaxValue)
            p.Add("invalid data offset");
        if (TableOffset == 0 || TableOffset % 512 != 0 || TableOffset + (ulong)MaxBatSize * 4 > (ulong)Math.Max(0, fileSize - VhdFooter.Size))
            p.Add("invalid table offset");
        if (!BitOperations.IsPow2(BlockSize))
            p.Add("invalid block size");
        if (Reserved1 != 0 || Reserved2.AsSpan().ContainsAnyExcept((byte)0))
            p.Add("invalid reserved bits");
        return p;
    }
}
