using System.Buffers.Binary;
using System.Text;

namespace BlkTapCtrl.Protocol.Control;

/// <summary>
/// One 280-byte control record exchanged over the tapdisk FIFOs (reference §2): an 8-byte head
/// (type, cookie, drivertype, pad) and a 272-byte payload union, little-endian, zero-filled.
/// The payload fields of all union members are exposed; which ones are meaningful depends on <see cref="Type"/>.
/// </summary>
public record struct ControlMessage
{
    public const int Size = 280;
    public const int HeaderSize = 8;
    public const int PayloadSize = Size - HeaderSize;
    /// <summary>Capacity of the path and string fields, including the terminating NUL.</summary>
    public const int TextCapacity = 256;

    public ControlMessageType Type { get; init; }
    public ushort Cookie { get; init; }
    public ushort DriverType { get; init; }

    // pid payload
    public int Pid { get; init; }

    // image payload
    public ulong Sectors { get; init; }
    public uint SectorSize { get; init; }
    public uint Info { get; init; }

    // params payload
    public ControlOpenFlags Flags { get; init; }
    public StorageType Storage { get; init; }
    public uint DevNum { get; init; }
    public uint DomId { get; init; }
    /// <summary>params.path for OPEN/RESUME.</summary>
    public string? Path { get; init; }

    // string payload (RUNTIME_ERROR)
    public string? Text { get; init; }

    public static ControlMessage Simple(ControlMessageType type, ushort cookie) => new() { Type = type, Cookie = cookie };

    public static ControlMessage PidResponse(ushort cookie, int pid) =>
        new() { Type = ControlMessageType.PidResponse, Cookie = cookie, Pid = pid };

    public static ControlMessage OpenResponse(ushort cookie, ulong sectors, uint sectorSize, uint info) =>
        new() { Type = ControlMessageType.OpenResponse, Cookie = cookie, Sectors = sectors, SectorSize = sectorSize, Info = info };

    public static ControlMessage Open(ushort cookie, DriverType driver, string path, ControlOpenFlags flags,
        StorageType storage, uint devNum, uint domId) =>
        new()
        {
            Type = ControlMessageType.Open, Cookie = cookie, DriverType = (ushort)driver, Path = path,
            Flags = flags, Storage = storage, DevNum = devNum, DomId = domId,
        };

    public static ControlMessage Resume(ushort cookie, DriverType driver, string path) =>
        new() { Type = ControlMessageType.Resume, Cookie = cookie, DriverType = (ushort)driver, Path = path };

    public static ControlMessage RuntimeError(ushort cookie, string text) =>
        new() { Type = ControlMessageType.RuntimeError, Cookie = cookie, Text = text };

    /// <summary>Writes the record into exactly <see cref="Size"/> bytes, zeroing everything not set.</summary>
    public readonly void WriteTo(Span<byte> record)
    {
        if (record.Length < Size)
            throw new ArgumentException($"control record buffer is {record.Length} bytes, needs {Size}", nameof(record));
        record = record[..Size];
        record.Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(record, (ushort)Type);
        BinaryPrimitives.WriteUInt16LittleEndian(record[2..], Cookie);
        BinaryPrimitives.WriteUInt16LittleEndian(record[4..], DriverType);
        var payload = record[HeaderSize..];
        switch (Type)
        {
            case ControlMessageType.PidResponse:
                BinaryPrimitives.WriteInt32LittleEndian(payload, Pid);
                break;
            case ControlMessageType.OpenResponse:
                BinaryPrimitives.WriteUInt64LittleEndian(payload, Sectors);
                BinaryPrimitives.WriteUInt32LittleEndian(payload[8..], SectorSize);
                BinaryPrimitives.WriteUInt32LittleEndian(payload[12..], Info);
                break;
            case ControlMessageType.Open:
            case ControlMessageType.Resume:
                payload[0] = (byte)Flags;
                payload[1] = (byte)Storage;
                BinaryPrimitives.WriteUInt32LittleEndian(payload[4..], DevNum);
                BinaryPrimitives.WriteUInt32LittleEndian(payload[8..], DomId);
                int len = WriteCString(payload.Slice(14, TextCapacity), Path ?? "", "params.path");
                BinaryPrimitives.WriteUInt16LittleEndian(payload[12..], (ushort)len);
                break;
            case ControlMessageType.RuntimeError:
                WriteCString(payload[..TextCapacity], Text ?? "", "string.text");
                break;
        }
    }

    /// <summary>Decodes one record. Unknown types decode with an empty payload so the receiver can answer ERROR.</summary>
    public static ControlMessage Read(ReadOnlySpan<byte> record)
    {
        if (record.Length < Size)
            throw new ControlProtocolException($"control record is {record.Length} bytes, expected {Size}");
        var type = (ControlMessageType)BinaryPrimitives.ReadUInt16LittleEndian(record);
        var msg = new ControlMessage
        {
            Type = type,
            Cookie = BinaryPrimitives.ReadUInt16LittleEndian(record[2..]),
            DriverType = BinaryPrimitives.ReadUInt16LittleEndian(record[4..]),
        };
        var payload = record.Slice(HeaderSize, PayloadSize);
        return type switch
        {
            ControlMessageType.PidResponse => msg with { Pid = BinaryPrimitives.ReadInt32LittleEndian(payload) },
            ControlMessageType.OpenResponse => msg with
            {
                Sectors = BinaryPrimitives.ReadUInt64LittleEndian(payload),
                SectorSize = BinaryPrimitives.ReadUInt32LittleEndian(payload[8..]),
                Info = BinaryPrimitives.ReadUInt32LittleEndian(payload[12..]),
            },
            ControlMessageType.Open or ControlMessageType.Resume => msg with
            {
                Flags = (ControlOpenFlags)payload[0],
                Storage = (StorageType)payload[1],
                DevNum = BinaryPrimitives.ReadUInt32LittleEndian(payload[4..]),
                DomId = BinaryPrimitives.ReadUInt32LittleEndian(payload[8..]),
                Path = ReadCString(payload.Slice(14, TextCapacity), "params.path"),
            },
            ControlMessageType.RuntimeError => msg with { Text = ReadCString(payload[..TextCapacity], "string.text") },
            _ => msg,
        };
    }

    private static int WriteCString(Span<byte> field, string value, string name)
    {
        int bytes = Encoding.UTF8.GetByteCount(value);
        if (bytes >= field.Length)
            throw new ControlProtocolException($"{name} is {bytes} bytes, at most {field.Length - 1} fit");
        if (value.Contains('\0'))
            throw new ControlProtocolException($"{name} contains a NUL character");
        return Encoding.UTF8.GetBytes(value, field);
    }

    /// <summary>Throws on bytes that are not UTF-8 instead of replacing them with U+FFFD.</summary>
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    // The original uses the field as a C string: everything up to the first NUL counts, and a field
    // without any NUL is malformed (it would read past the record). The bytes are a file name to the
    // original; a string cannot hold bytes that are not UTF-8, and replacing them would name another
    // file (and re-encode longer), so such a field is refused.
    private static string ReadCString(ReadOnlySpan<byte> field, string name)
    {
        int nul = field.IndexOf((byte)0);
        if (nul < 0)
            throw new ControlProtocolException($"{name} is not NUL-terminated within {field.Length} bytes");
        try
        {
            return StrictUtf8.GetString(field[..nul]);
        }
        catch (DecoderFallbackException e)
        {
            throw new ControlProtocolException($"{name} is not UTF-8 (byte 0x{e.BytesUnknown?.FirstOrDefault():x2} at {e.Index})");
        }
    }
}
