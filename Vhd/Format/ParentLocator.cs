using System.Buffers.Binary;
using System.Text;

namespace BlkTapCtrl.Vhd.Format;

/// <summary>Platform codes of parent locator entries.</summary>
public static class PlatformCode
{
    public const uint None = 0, Wi2r = 0x57693272, Wi2k = 0x5769326B, W2ru = 0x57327275, W2ku = 0x57326B75,
        Mac = 0x4D616320, Macx = 0x4D616358;

    public static bool IsKnown(uint code) => code is None or Wi2r or Wi2k or W2ru or W2ku or Mac or Macx;

    /// <summary>The name vhd-util read prints (including the original's "UNKOWN" spelling).</summary>
    public static string Name(uint code) => code switch
    {
        None => "PLAT_CODE_NONE",
        Wi2r => "PLAT_CODE_WI2R",
        Wi2k => "PLAT_CODE_WI2K",
        W2ru => "PLAT_CODE_W2RU",
        W2ku => "PLAT_CODE_W2KU",
        Mac => "PLAT_CODE_MAC",
        Macx => "PLAT_CODE_MACX",
        _ => "UNKOWN",
    };
}

/// <summary>
/// One of the header's 8 parent locator entries (24 bytes): where the encoded parent path lives.
/// data_space is written as a byte count; on reading, a value below 512 counts sectors (older
/// writers), a multiple of 512 counts bytes, anything else is invalid.
/// </summary>
public struct ParentLocator
{
    public const int EntrySize = 24;
    public uint Code;
    public uint DataSpace;
    public uint DataLength;
    public uint Reserved;
    public ulong DataOffset;

    public static ParentLocator Parse(ReadOnlySpan<byte> b) => new()
    {
        Code = BinaryPrimitives.ReadUInt32BigEndian(b),
        DataSpace = BinaryPrimitives.ReadUInt32BigEndian(b[4..]),
        DataLength = BinaryPrimitives.ReadUInt32BigEndian(b[8..]),
        Reserved = BinaryPrimitives.ReadUInt32BigEndian(b[12..]),
        DataOffset = BinaryPrimitives.ReadUInt64BigEndian(b[16..]),
    };

    public readonly void WriteTo(Span<byte> b)
    {
        BinaryPrimitives.WriteUInt32BigEndian(b, Code);
        BinaryPrimitives.WriteUInt32BigEndian(b[4..], DataSpace);
        BinaryPrimitives.WriteUInt32BigEndian(b[8..], DataLength);
        BinaryPrimitives.WriteUInt32BigEndian(b[12..], Reserved);
        BinaryPrimitives.WriteUInt64BigEndian(b[16..], DataOffset);
    }

    public readonly bool IsEmpty => Code == PlatformCode.None && DataSpace == 0 && DataLength == 0 && Reserved == 0 && DataOffset == 0;

    /// <summary>Bytes reserved for the locator's data, or -1 when data_space is neither sectors nor bytes.</summary>
    public readonly long SpaceBytes => DataSpace < 512 ? (long)DataSpace * 512 : DataSpace % 512 == 0 ? DataSpace : -1;

    /// <summary>Encodes a relative parent path the way blktap does for the given code.</summary>
    public static byte[] Encode(uint code, string relativePath)
    {
        switch (code)
        {
            case PlatformCode.Macx:
                return Encoding.UTF8.GetBytes("file://" + relativePath);
            case PlatformCode.W2ku:
            case PlatformCode.W2ru:
                var p = relativePath.StartsWith("./", StringComparison.Ordinal) ? relativePath[2..] : relativePath;
                return Encoding.Unicode.GetBytes(".\\" + p.Replace('/', '\\'));
            default:
                throw new VhdFormatException("locator platform code", code, "only MACX, W2KU and W2RU locators are written");
        }
    }

    /// <summary>Decodes locator data to a path with forward slashes ("file://" and "C:" dropped).</summary>
    public static string Decode(uint code, ReadOnlySpan<byte> data)
    {
        string s;
        switch (code)
        {
            case PlatformCode.Macx:
                s = Encoding.UTF8.GetString(data);
                if (s.StartsWith("file://", StringComparison.Ordinal))
                    s = s[7..];
                break;
            case PlatformCode.W2ku:
            case PlatformCode.W2ru:
                if (data.Length % 2 != 0)
                    throw new VhdFormatException("locator data length", data.Length, "UTF-16 locator data must have an even length");
                s = Encoding.Unicode.GetString(data).Replace('\\', '/');
                if (s.Length >= 2 && s[1] == ':')
                    s = s[2..];
                break;
            default:
                throw new VhdFormatException("locator platform code", code, "only MACX, W2KU and W2RU locators can be decoded");
        }
        var nul = s.IndexOf('\0');
        return nul >= 0 ? s[..nul] : s;
    }
}
