using System.Buffers.Binary;

namespace BlkTapCtrl.Vhd.Format;

/// <summary>
/// The 512-byte VHD footer (big-endian). The primary copy sits at the end of the file (or of the block
/// device); dynamic and differencing disks keep a backup copy at offset 0. <see cref="Parse"/> only
/// decodes; <see cref="Problems"/> lists every rule the footer breaks in vhd-util check's words, and
/// <see cref="Validate"/> throws for the first one.
/// </summary>
public sealed class VhdFooter
{
    public const int Size = 512;
    public const uint FeatureTemporary = 0x1, FeatureReserved = 0x2;
    public const uint CurrentFileFormatVersion = 0x00010000;
    /// <summary>Creator version blktap writes (1.3); tapdisk refuses I/O on `tap` images above it.</summary>
    public const uint TapCurrentVersion = 0x00010003;
    public const uint CreatorOsWindows = 0x5769326B, CreatorOsMacintosh = 0x4D616320;
    public const ulong FixedDataOffset = ulong.MaxValue;
    public static ReadOnlySpan<byte> CookieValue => "conectix"u8;
    /// <summary>Cookie of a footer disabled with "vhd-util set"/ poisoning (refused unless ignore-disabled).</summary>
    public static ReadOnlySpan<byte> PoisonCookie => "v_poison"u8;

    public byte[] Cookie { get; set; } = CookieValue.ToArray();
    public uint Features { get; set; } = FeatureReserved;
    public uint FileFormatVersion { get; set; } = CurrentFileFormatVersion;
    public ulong DataOffset { get; set; }
    public uint Timestamp { get; set; }
    public byte[] CreatorApplication { get; set; } = "tap\0"u8.ToArray();
    public uint CreatorVersion { get; set; } = TapCurrentVersion;
    public uint CreatorOs { get; set; }
    public ulong OriginalSize { get; set; }
    public ulong CurrentSize { get; set; }
    public uint Geometry { get; set; }
    public DiskType Type { get; set; }
    public uint Checksum { get; set; }
    public Guid Uuid { get; set; }
    public byte Saved { get; set; }
    public byte Hidden { get; set; }
    public byte[] Reserved { get; set; } = new byte[426];

    public bool IsDynamic => Type is DiskType.Dynamic or DiskType.Differencing;
    public bool IsTapCreated => CreatorApplication.AsSpan(0, 3).SequenceEqual("tap"u8);
    public bool HasValidCookie => Cookie.AsSpan().SequenceEqual(CookieValue);
    public bool IsPoisoned => Cookie.AsSpan().SequenceEqual(PoisonCookie);
    public long CurrentSectors => (long)(CurrentSize / 512);

    public static VhdFooter Parse(ReadOnlySpan<byte> b)
    {
        if (b.Length < Size)
            throw new VhdFormatException("footer length", b.Length, $"a footer needs {Size} bytes");
        return new VhdFooter
        {
            Cookie = b[..8].ToArray(),
            Features = BinaryPrimitives.ReadUInt32BigEndian(b[8..]),
            FileFormatVersion = BinaryPrimitives.ReadUInt32BigEndian(b[12..]),
            DataOffset = BinaryPrimitives.ReadUInt64BigEndian(b[16..]),
            Timestamp = BinaryPrimitives.ReadUInt32BigEndian(b[24..]),
            CreatorApplication = b.Slice(28, 4).ToArray(),
            CreatorVersion = BinaryPrimitives.ReadUInt32BigEndian(b[32..]),
            CreatorOs = BinaryPrimitives.ReadUInt32BigEndian(b[36..]),
            OriginalSize = BinaryPrimitives.ReadUInt64BigEndian(b[40..]),
            CurrentSize = BinaryPrimitives.ReadUInt64BigEndian(b[48..]),
            Geometry = BinaryPrimitives.ReadUInt32BigEndian(b[56..]),
            Type = (DiskType)BinaryPrimitives.ReadUInt32BigEndian(b[60..]),
            Checksum = BinaryPrimitives.ReadUInt32BigEndian(b[64..]),
            Uuid = new Guid(b.Slice(68, 16), bigEndian: true),
            Saved = b[84],
            Hidden = b[85],
            Reserved = b.Slice(86, 426).ToArray(),
        };
    }

    /// <summary>Encodes the footer; the checksum field is recomputed unless <paramref name="keepChecksum"/>.</summary>
    public void WriteTo(Span<byte> b, bool keepChecksum = false)
    {
        b[..Size].Clear();
        Cookie.AsSpan(0, 8).CopyTo(b);
        BinaryPrimitives.WriteUInt32BigEndian(b[8..], Features);
        BinaryPrimitives.WriteUInt32BigEndian(b[12..], FileFormatVersion);
        BinaryPrimitives.WriteUInt64BigEndian(b[16..], DataOffset);
        BinaryPrimitives.WriteUInt32BigEndian(b[24..], Timestamp);
        CreatorApplication.AsSpan(0, 4).CopyTo(b[28..]);
        BinaryPrimitives.WriteUInt32BigEndian(b[32..], CreatorVersion);
        BinaryPrimitives.WriteUInt32BigEndian(b[36..], CreatorOs);
        BinaryPrimitives.WriteUInt64BigEndian(b[40..], OriginalSize);
        BinaryPrimitives.WriteUInt64BigEndian(b[48..], CurrentSize);
        BinaryPrimitives.WriteUInt32BigEndian(b[56..], Geometry);
        BinaryPrimitives.WriteUInt32BigEndian(b[60..], (uint)Type);
        Uuid.TryWriteBytes(b.Slice(68, 16), bigEndian: true, out _);
        b[84] = Saved;
        b[85] = Hidden;
        Reserved.AsSpan(0, 426).CopyTo(b[86..]);
        if (!keepChecksum)
            Checksum = VhdChecksum.Compute(b[..Size], 64);
        BinaryPrimitives.WriteUInt32BigEndian(b[64..], Checksum);
    }

    public byte[] ToBytes(bool keepChecksum = false)
    {
        var b = new byte[Size];
        WriteTo(b, keepChecksum);
        return b;
    }

    public uint ComputeChecksum()
    {
        Span<byte> b = stackalloc byte[Size];
        WriteTo(b, keepChecksum: true);
        return VhdChecksum.Compute(b, 64);
    }

    /// <summary>
    /// True when the stored checksum matches. Old `tap` images (creator 0.1/1.1) set hidden after the
    /// checksum was computed, so for them a checksum computed with hidden = 0 also counts.
    /// </summary>
    public bool ChecksumMatches()
    {
        if (ComputeChecksum() == Checksum)
            return true;
        if (IsTapCreated && Hidden != 0 && CreatorVersion is 0x00000001 or 0x00010001)
        {
            var h = Hidden;
            Hidden = 0;
            var legacy = ComputeChecksum();
            Hidden = h;
            return legacy == Checksum;
        }
        return false;
    }

    public VhdFooter Clone()
    {
        var c = (VhdFooter)MemberwiseClone();
        c.Cookie = (byte[])Cookie.Clone();
        c.CreatorApplication = (byte[])CreatorApplication.Clone();
        c.Reserved = (byte[])Reserved.Clone();
        return c;
    }

    /// <summary>Every rule this footer breaks, worded as vhd-util check prints them (empty = valid).</summary>
    public List<(string Field, string Problem)> Problems(uint now, bool ignoreDisabled = true)
    {
        var p = new List<(string, string)>();
        if (!HasValidCookie && !(ignoreDisabled && IsPoisoned))
            p.Add(("cookie", "invalid cookie"));
        if (!ChecksumMatches())
            p.Add(("checksum", "invalid checksum"));
        if ((Features & FeatureReserved) == 0)
            p.Add(("features", "invalid 'reserved' feature"));
        if ((Features & ~(FeatureTemporary | FeatureReserved)) != 0)
            p.Add(("features", "invalid extra features"));
        if (FileFormatVersion != CurrentFileFormatVersion)
            p.Add(("file format version", "invalid file format version"));
        if (Type is not DiskType.Dynamic and not DiskType.Differencing && DataOffset != FixedDataOffset)
            p.Add(("data offset", "invalid data offset"));
        if (Timestamp > (ulong)now + 1800)
            p.Add(("timestamp", "creation time in future"));
        if (IsTapCreated && CreatorVersion > TapCurrentVersion)
            p.Add(("creator version", "unsupported tap creator version"));
        if (Format.Geometry.FromSize(CurrentSize) < Geometry)
            p.Add(("geometry", "geometry too large"));
        if (Type is not DiskType.Fixed and not DiskType.Dynamic and not DiskType.Differencing)
            p.Add(("type", "invalid type"));
        if (Saved > 1)
            p.Add(("saved", "invalid 'saved' state"));
        if (Hidden > 1)
            p.Add(("hidden", "invalid 'hidden' state"));
        if (Reserved.AsSpan().ContainsAnyExcept((byte)0))
            p.Add(("reserved", "invalid 'reserved' bits"));
        return p;
    }

    /// <summary>
    /// The checks an open needs before trusting the footer to locate anything (cookie, checksum, type,
    /// sizes); throws naming the field. Softer rules (timestamp, reserved bytes) are left to check.
    /// </summary>
    public void Validate(bool ignoreDisabled = false)
    {
        if (!HasValidCookie)
        {
            if (IsPoisoned && !ignoreDisabled)
                throw new VhdFormatException("footer cookie", "v_poison", "the image is disabled");
            if (!IsPoisoned)
                throw new VhdFormatException("footer cookie", System.Text.Encoding.Latin1.GetString(Cookie), "expected 'conectix'");
        }
        if (!ChecksumMatches())
            throw new VhdFormatException("footer checksum", Checksum, $"computed 0x{ComputeChecksum():x8}");
        if (Type is not DiskType.Fixed and not DiskType.Dynamic and not DiskType.Differencing)
            throw new VhdFormatException("footer disk type", (uint)Type, "expected 2 (fixed), 3 (dynamic) or 4 (differencing)");
        if (IsDynamic && (DataOffset % 512 != 0 || DataOffset < 512 || DataOffset > long.MaxValue / 2))
            throw new VhdFormatException("footer data offset", DataOffset, "must be a sector-aligned header offset");
        if (CurrentSize % 512 != 0 || CurrentSize > (ulong)VhdLimits.MaxDiskBytes)
            throw new VhdFormatException("footer current size", CurrentSize, $"must be a multiple of 512 up to {VhdLimits.MaxDiskBytes}");
    }
}
