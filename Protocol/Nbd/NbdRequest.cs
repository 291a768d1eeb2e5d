using System.Buffers.Binary;

namespace BlkTapCtrl.Protocol.Nbd;

/// <summary>
/// A 28-byte transmission request: magic, command flags, type, cookie (proto.md's "handle"), offset,
/// length. For NBD_CMD_WRITE <see cref="Length"/> bytes of data follow it.
/// </summary>
public readonly record struct NbdRequest(NbdCommandFlags Flags, NbdCommand Command, ulong Cookie, ulong Offset, uint Length)
{
    public const int Size = 28;

    /// <summary>True when <see cref="Length"/> bytes of payload follow the header on the wire.</summary>
    public bool HasPayload => Command == NbdCommand.Write;

    public void WriteTo(Span<byte> destination)
    {
        NbdHandshake.CheckLength(destination.Length, Size, "request");
        BinaryPrimitives.WriteUInt32BigEndian(destination, NbdMagic.Request);
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], (ushort)Flags);
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], (ushort)Command);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], Cookie);
        BinaryPrimitives.WriteUInt64BigEndian(destination[16..], Offset);
        BinaryPrimitives.WriteUInt32BigEndian(destination[24..], Length);
    }

    /// <summary>False when fewer than 28 bytes are available; throws on a wrong magic (the stream is lost).</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out NbdRequest request)
    {
        request = default;
        if (source.Length < Size)
            return false;
        uint magic = BinaryPrimitives.ReadUInt32BigEndian(source);
        if (magic != NbdMagic.Request)
            throw new NbdProtocolException($"request magic is 0x{magic:x8}, expected 0x{NbdMagic.Request:x8}");
        request = new NbdRequest(
            (NbdCommandFlags)BinaryPrimitives.ReadUInt16BigEndian(source[4..]),
            (NbdCommand)BinaryPrimitives.ReadUInt16BigEndian(source[6..]),
            BinaryPrimitives.ReadUInt64BigEndian(source[8..]),
            BinaryPrimitives.ReadUInt64BigEndian(source[16..]),
            BinaryPrimitives.ReadUInt32BigEndian(source[24..]));
        return true;
    }
}

/// <summary>The 16-byte simple reply: magic, error, cookie; read data follows on success.</summary>
public readonly record struct NbdSimpleReply(NbdError Error, ulong Cookie)
{
    public const int Size = 16;

    public void WriteTo(Span<byte> destination)
    {
        NbdHandshake.CheckLength(destination.Length, Size, "simple reply");
        BinaryPrimitives.WriteUInt32BigEndian(destination, NbdMagic.SimpleReply);
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], (uint)Error);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], Cookie);
    }

    public static NbdSimpleReply Read(ReadOnlySpan<byte> source)
    {
        NbdHandshake.CheckLength(source.Length, Size, "simple reply");
        uint magic = BinaryPrimitives.ReadUInt32BigEndian(source);
        if (magic != NbdMagic.SimpleReply)
            throw new NbdProtocolException($"simple reply magic is 0x{magic:x8}, expected 0x{NbdMagic.SimpleReply:x8}");
        return new NbdSimpleReply((NbdError)BinaryPrimitives.ReadUInt32BigEndian(source[4..]), BinaryPrimitives.ReadUInt64BigEndian(source[8..]));
    }
}
