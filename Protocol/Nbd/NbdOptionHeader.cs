using System.Buffers.Binary;

namespace BlkTapCtrl.Protocol.Nbd;

/// <summary>
/// The 16-byte head of a client option: IHAVEOPT, option, data length; the data follows.
/// </summary>
public readonly record struct NbdOptionHeader(NbdOption Option, uint Length)
{
    public const int Size = 16;

    public void WriteTo(Span<byte> destination)
    {
        NbdHandshake.CheckLength(destination.Length, Size, "option header");
        BinaryPrimitives.WriteUInt64BigEndian(destination, NbdMagic.Option);
        BinaryPrimitives.WriteUInt32BigEndian(destination[8..], (uint)Option);
        BinaryPrimitives.WriteUInt32BigEndian(destination[12..], Length);
    }

    /// <summary>False when fewer than 16 bytes are available; throws when the magic is wrong.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out NbdOptionHeader header)
    {
        header = default;
        if (source.Length < Size)
            return false;
        ulong magic = BinaryPrimitives.ReadUInt64BigEndian(source);
        if (magic != NbdMagic.Option)
            throw new NbdProtocolException($"option magic is 0x{magic:x16}, expected IHAVEOPT 0x{NbdMagic.Option:x16}");
        header = new NbdOptionHeader((NbdOption)BinaryPrimitives.ReadUInt32BigEndian(source[8..]),
            BinaryPrimitives.ReadUInt32BigEndian(source[12..]));
        return true;
    }
}

/// <summary>The 20-byte head of an option reply: magic, the option answered, reply type, data length.</summary>
public readonly record struct NbdOptionReplyHeader(NbdOption Option, NbdOptionReplyType Type, uint Length)
{
    public const int Size = 20;

    public bool IsError => ((uint)Type & 0x8000_0000) != 0;

    public void WriteTo(Span<byte> destination)
    {
        NbdHandshake.CheckLength(destination.Length, Size, "option reply header");
        BinaryPrimitives.WriteUInt64BigEndian(destination, NbdMagic.OptionReply);
        BinaryPrimitives.WriteUInt32BigEndian(destination[8..], (uint)Option);
        BinaryPrimitives.WriteUInt32BigEndian(destination[12..], (uint)Type);
        BinaryPrimitives.WriteUInt32BigEndian(destination[16..], Length);
    }

    public static bool TryRead(ReadOnlySpan<byte> source, out NbdOptionReplyHeader header)
    {
        header = default;
        if (source.Length < Size)
            return false;
        ulong magic = BinaryPrimitives.ReadUInt64BigEndian(source);
        if (magic != NbdMagic.OptionReply)
            throw new NbdProtocolException($"option reply magic is 0x{magic:x16}, expected 0x{NbdMagic.OptionReply:x16}");
        header = new NbdOptionReplyHeader((NbdOption)BinaryPrimitives.ReadUInt32BigEndian(source[8..]),
            (NbdOptionReplyType)BinaryPrimitives.ReadUInt32BigEndian(source[12..]),
            BinaryPrimitives.ReadUInt32BigEndian(source[16..]));
        return true;
    }
}
