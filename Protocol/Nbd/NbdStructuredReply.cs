using System.Buffers.Binary;
using System.Text;

namespace BlkTapCtrl.Protocol.Nbd;

/// <summary>The 20-byte head of a structured reply chunk: magic, flags, type, cookie, payload length.</summary>
public readonly record struct NbdChunkHeader(NbdReplyFlags Flags, NbdReplyType Type, ulong Cookie, uint Length)
{
    public const int Size = 20;

    public bool IsDone => Flags.HasFlag(NbdReplyFlags.Done);
    public bool IsError => ((ushort)Type & 0x8000) != 0;

    public void WriteTo(Span<byte> destination)
    {
        NbdHandshake.CheckLength(destination.Length, Size, "structured reply header");
        BinaryPrimitives.WriteUInt32BigEndian(destination, NbdMagic.StructuredReply);
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], (ushort)Flags);
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], (ushort)Type);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], Cookie);
        BinaryPrimitives.WriteUInt32BigEndian(destination[16..], Length);
    }

    public static NbdChunkHeader Read(ReadOnlySpan<byte> source)
    {
        NbdHandshake.CheckLength(source.Length, Size, "structured reply header");
        uint magic = BinaryPrimitives.ReadUInt32BigEndian(source);
        if (magic != NbdMagic.StructuredReply)
            throw new NbdProtocolException($"structured reply magic is 0x{magic:x8}, expected 0x{NbdMagic.StructuredReply:x8}");
        return new NbdChunkHeader((NbdReplyFlags)BinaryPrimitives.ReadUInt16BigEndian(source[4..]),
            (NbdReplyType)BinaryPrimitives.ReadUInt16BigEndian(source[6..]),
            BinaryPrimitives.ReadUInt64BigEndian(source[8..]), BinaryPrimitives.ReadUInt32BigEndian(source[16..]));
    }

    /// <summary>Client side: the magic tells a simple reply (16 bytes) from a structured chunk (20 bytes).</summary>
    public static bool IsStructured(ReadOnlySpan<byte> source) =>
        source.Length >= 4 && BinaryPrimitives.ReadUInt32BigEndian(source) == NbdMagic.StructuredReply;
}

/// <summary>One extent of a block status reply: length and the context's status flags.</summary>
public readonly record struct NbdBlockDescriptor(uint Length, uint Flags)
{
    public const int Size = 8;
}

/// <summary>
/// Writers for whole structured reply chunks (server side) and payload readers (client side).
/// Writers return the bytes written; OffsetData writes only the header and offset so the data can be
/// produced straight into the socket buffer that follows it.
/// </summary>
public static class NbdStructuredReply
{
    public const int NoneSize = NbdChunkHeader.Size;
    public const int OffsetDataHeaderSize = NbdChunkHeader.Size + 8;
    public const int OffsetHoleSize = NbdChunkHeader.Size + 12;
    public const int BlockStatusHeaderSize = NbdChunkHeader.Size + 4;
    /// <summary>The largest data a single OFFSET_DATA chunk can carry (length field minus the offset).</summary>
    public const uint MaxChunkData = uint.MaxValue - 8;

    public static int WriteNone(Span<byte> destination, ulong cookie)
    {
        new NbdChunkHeader(NbdReplyFlags.Done, NbdReplyType.None, cookie, 0).WriteTo(destination);
        return NoneSize;
    }

    public static int WriteOffsetDataHeader(Span<byte> destination, NbdReplyFlags flags, ulong cookie, ulong offset, uint dataLength)
    {
        if (dataLength == 0 || dataLength > MaxChunkData)
            throw new ArgumentOutOfRangeException(nameof(dataLength), dataLength, "OFFSET_DATA carries 1 to 2^32-9 bytes");
        new NbdChunkHeader(flags, NbdReplyType.OffsetData, cookie, dataLength + 8).WriteTo(destination);
        BinaryPrimitives.WriteUInt64BigEndian(destination[NbdChunkHeader.Size..], offset);
        return OffsetDataHeaderSize;
    }

    public static int WriteOffsetHole(Span<byte> destination, NbdReplyFlags flags, ulong cookie, ulong offset, uint holeLength)
    {
        if (holeLength == 0)
            throw new ArgumentOutOfRangeException(nameof(holeLength), 0, "OFFSET_HOLE size must be non-zero");
        new NbdChunkHeader(flags, NbdReplyType.OffsetHole, cookie, 12).WriteTo(destination);
        BinaryPrimitives.WriteUInt64BigEndian(destination[NbdChunkHeader.Size..], offset);
        BinaryPrimitives.WriteUInt32BigEndian(destination[(NbdChunkHeader.Size + 8)..], holeLength);
        return OffsetHoleSize;
    }

    /// <summary>A BLOCK_STATUS chunk with its descriptors; at least one descriptor, none of length 0.</summary>
    public static int WriteBlockStatus(Span<byte> destination, NbdReplyFlags flags, ulong cookie, uint contextId,
        ReadOnlySpan<NbdBlockDescriptor> descriptors)
    {
        if (descriptors.IsEmpty)
            throw new ArgumentException("a block status chunk needs at least one descriptor", nameof(descriptors));
        int size = BlockStatusHeaderSize + descriptors.Length * NbdBlockDescriptor.Size;
        NbdHandshake.CheckLength(destination.Length, size, "block status chunk");
        new NbdChunkHeader(flags, NbdReplyType.BlockStatus, cookie, (uint)(size - NbdChunkHeader.Size)).WriteTo(destination);
        BinaryPrimitives.WriteUInt32BigEndian(destination[NbdChunkHeader.Size..], contextId);
        var p = destination[BlockStatusHeaderSize..];
        foreach (var d in descriptors)
        {
            if (d.Length == 0)
                throw new ArgumentException("a block descriptor's length must be non-zero", nameof(descriptors));
            BinaryPrimitives.WriteUInt32BigEndian(p, d.Length);
            BinaryPrimitives.WriteUInt32BigEndian(p[4..], d.Flags);
            p = p[NbdBlockDescriptor.Size..];
        }
        return size;
    }

    /// <summary>Upper bound of <see cref="WriteError"/>'s size for a message, for sizing buffers.</summary>
    public static int ErrorSize(string message) => NbdChunkHeader.Size + 6 + Encoding.UTF8.GetByteCount(message);

    /// <summary>A final NBD_REPLY_TYPE_ERROR chunk carrying an error and a human-readable message.</summary>
    public static int WriteError(Span<byte> destination, ulong cookie, NbdError error, string message)
    {
        if (error == NbdError.None)
            throw new ArgumentException("an error chunk needs a non-zero error", nameof(error));
        int n = Encoding.UTF8.GetBytes(message, destination[(NbdChunkHeader.Size + 6)..]);
        if (n > ushort.MaxValue)
            throw new ArgumentException($"error message is {n} bytes, the limit is 65535", nameof(message));
        new NbdChunkHeader(NbdReplyFlags.Done, NbdReplyType.Error, cookie, (uint)(6 + n)).WriteTo(destination);
        BinaryPrimitives.WriteUInt32BigEndian(destination[NbdChunkHeader.Size..], (uint)error);
        BinaryPrimitives.WriteUInt16BigEndian(destination[(NbdChunkHeader.Size + 4)..], (ushort)n);
        return NbdChunkHeader.Size + 6 + n;
    }

    // ---- client side ----

    public static ulong ReadOffset(ReadOnlySpan<byte> payload)
    {
        if (payload.Length < 8)
            throw new NbdProtocolException($"offset chunk payload is {payload.Length} bytes, needs at least 8");
        return BinaryPrimitives.ReadUInt64BigEndian(payload);
    }

    public static (ulong Offset, uint Length) ReadOffsetHole(ReadOnlySpan<byte> payload)
    {
        if (payload.Length != 12)
            throw new NbdProtocolException($"OFFSET_HOLE payload is {payload.Length} bytes, expected 12");
        return (BinaryPrimitives.ReadUInt64BigEndian(payload), BinaryPrimitives.ReadUInt32BigEndian(payload[8..]));
    }

    public static (NbdError Error, string Message) ReadError(ReadOnlySpan<byte> payload)
    {
        if (payload.Length < 6)
            throw new NbdProtocolException($"error chunk payload is {payload.Length} bytes, needs at least 6");
        var error = (NbdError)BinaryPrimitives.ReadUInt32BigEndian(payload);
        int n = BinaryPrimitives.ReadUInt16BigEndian(payload[4..]);
        if (n > payload.Length - 6)
            throw new NbdProtocolException($"error message length {n} exceeds the chunk's {payload.Length - 6} bytes");
        return (error, Encoding.UTF8.GetString(payload.Slice(6, n)));
    }

    public static (uint ContextId, NbdBlockDescriptor[] Descriptors) ReadBlockStatus(ReadOnlySpan<byte> payload)
    {
        if (payload.Length < 12 || (payload.Length - 4) % 8 != 0)
            throw new NbdProtocolException($"BLOCK_STATUS payload is {payload.Length} bytes, must be 4 + a positive multiple of 8");
        uint id = BinaryPrimitives.ReadUInt32BigEndian(payload);
        var descriptors = new NbdBlockDescriptor[(payload.Length - 4) / 8];
        for (int i = 0; i < descriptors.Length; i++)
        {
            var p = payload[(4 + i * 8)..];
            descriptors[i] = new NbdBlockDescriptor(BinaryPrimitives.ReadUInt32BigEndian(p), BinaryPrimitives.ReadUInt32BigEndian(p[4..]));
        }
        return (id, descriptors);
    }
}
