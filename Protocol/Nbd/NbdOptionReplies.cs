using System.Buffers.Binary;
using System.Text;

namespace BlkTapCtrl.Protocol.Nbd;

/// <summary>
/// Writers (server side) and readers (client side) for whole option replies: header plus payload.
/// Every writer returns the number of bytes written.
/// </summary>
public static class NbdOptionReplies
{
    public static int WriteAck(Span<byte> destination, NbdOption option)
    {
        new NbdOptionReplyHeader(option, NbdOptionReplyType.Ack, 0).WriteTo(destination);
        return NbdOptionReplyHeader.Size;
    }

    /// <summary>An error reply (bit 31 type) with a human-readable message.</summary>
    public static int WriteError(Span<byte> destination, NbdOption option, NbdOptionReplyType type, string message)
    {
        if (((uint)type & 0x8000_0000) == 0)
            throw new ArgumentException($"reply type {type} is not an error type", nameof(type));
        int n = Encoding.UTF8.GetBytes(message, destination[NbdOptionReplyHeader.Size..]);
        new NbdOptionReplyHeader(option, type, (uint)n).WriteTo(destination);
        return NbdOptionReplyHeader.Size + n;
    }

    /// <summary>NBD_REP_SERVER for NBD_OPT_LIST: name length, name.</summary>
    public static int WriteServer(Span<byte> destination, NbdOption option, string exportName)
    {
        int offset = NbdOptionReplyHeader.Size;
        NbdString.WritePrefixed(destination, ref offset, exportName);
        new NbdOptionReplyHeader(option, NbdOptionReplyType.Server, (uint)(offset - NbdOptionReplyHeader.Size)).WriteTo(destination);
        return offset;
    }

    public const int InfoExportSize = NbdOptionReplyHeader.Size + 2 + 8 + 2;
    public const int InfoBlockSizeSize = NbdOptionReplyHeader.Size + 2 + 12;

    public static int WriteInfoExport(Span<byte> destination, NbdOption option, ulong exportSize, NbdTransmissionFlags flags)
    {
        new NbdOptionReplyHeader(option, NbdOptionReplyType.Info, 12).WriteTo(destination);
        var p = destination[NbdOptionReplyHeader.Size..];
        BinaryPrimitives.WriteUInt16BigEndian(p, (ushort)NbdInfoType.Export);
        BinaryPrimitives.WriteUInt64BigEndian(p[2..], exportSize);
        BinaryPrimitives.WriteUInt16BigEndian(p[10..], (ushort)flags);
        return InfoExportSize;
    }

    public static int WriteInfoName(Span<byte> destination, NbdOption option, string exportName)
    {
        int n = Encoding.UTF8.GetBytes(exportName, destination[(NbdOptionReplyHeader.Size + 2)..]);
        new NbdOptionReplyHeader(option, NbdOptionReplyType.Info, (uint)(2 + n)).WriteTo(destination);
        BinaryPrimitives.WriteUInt16BigEndian(destination[NbdOptionReplyHeader.Size..], (ushort)NbdInfoType.Name);
        return NbdOptionReplyHeader.Size + 2 + n;
    }

    public static int WriteInfoBlockSize(Span<byte> destination, NbdOption option, uint minimum, uint preferred, uint maximum)
    {
        new NbdOptionReplyHeader(option, NbdOptionReplyType.Info, 14).WriteTo(destination);
        var p = destination[NbdOptionReplyHeader.Size..];
        BinaryPrimitives.WriteUInt16BigEndian(p, (ushort)NbdInfoType.BlockSize);
        BinaryPrimitives.WriteUInt32BigEndian(p[2..], minimum);
        BinaryPrimitives.WriteUInt32BigEndian(p[6..], preferred);
        BinaryPrimitives.WriteUInt32BigEndian(p[10..], maximum);
        return InfoBlockSizeSize;
    }

    /// <summary>NBD_REP_META_CONTEXT: context id, name (no length prefix: it runs to the end of the reply).</summary>
    public static int WriteMetaContext(Span<byte> destination, NbdOption option, uint contextId, string name)
    {
        int n = Encoding.UTF8.GetBytes(name, destination[(NbdOptionReplyHeader.Size + 4)..]);
        new NbdOptionReplyHeader(option, NbdOptionReplyType.MetaContext, (uint)(4 + n)).WriteTo(destination);
        BinaryPrimitives.WriteUInt32BigEndian(destination[NbdOptionReplyHeader.Size..], contextId);
        return NbdOptionReplyHeader.Size + 4 + n;
    }

    // ---- client side ----

    public static NbdInfoType ReadInfoType(ReadOnlySpan<byte> payload)
    {
        if (payload.Length < 2)
            throw new NbdProtocolException($"NBD_REP_INFO payload is {payload.Length} bytes, needs at least 2");
        return (NbdInfoType)BinaryPrimitives.ReadUInt16BigEndian(payload);
    }

    public static (ulong Size, NbdTransmissionFlags Flags) ReadInfoExport(ReadOnlySpan<byte> payload)
    {
        if (payload.Length != 12 || ReadInfoType(payload) != NbdInfoType.Export)
            throw new NbdProtocolException($"NBD_INFO_EXPORT payload is {payload.Length} bytes, expected 12");
        return (BinaryPrimitives.ReadUInt64BigEndian(payload[2..]), (NbdTransmissionFlags)BinaryPrimitives.ReadUInt16BigEndian(payload[10..]));
    }

    public static (uint Minimum, uint Preferred, uint Maximum) ReadInfoBlockSize(ReadOnlySpan<byte> payload)
    {
        if (payload.Length != 14 || ReadInfoType(payload) != NbdInfoType.BlockSize)
            throw new NbdProtocolException($"NBD_INFO_BLOCK_SIZE payload is {payload.Length} bytes, expected 14");
        return (BinaryPrimitives.ReadUInt32BigEndian(payload[2..]), BinaryPrimitives.ReadUInt32BigEndian(payload[6..]),
            BinaryPrimitives.ReadUInt32BigEndian(payload[10..]));
    }

    public static (uint ContextId, string Name) ReadMetaContext(ReadOnlySpan<byte> payload)
    {
        if (payload.Length < 4)
            throw new NbdProtocolException($"NBD_REP_META_CONTEXT payload is {payload.Length} bytes, needs at least 4");
        return (BinaryPrimitives.ReadUInt32BigEndian(payload), Encoding.UTF8.GetString(payload[4..]));
    }

    public static string ReadServer(ReadOnlySpan<byte> payload)
    {
        if (payload.Length < 4)
            throw new NbdProtocolException($"NBD_REP_SERVER payload is {payload.Length} bytes, needs at least 4");
        uint n = BinaryPrimitives.ReadUInt32BigEndian(payload);
        if (n > payload.Length - 4)
            throw new NbdProtocolException($"NBD_REP_SERVER name length {n} exceeds payload of {payload.Length - 4} bytes");
        return Encoding.UTF8.GetString(payload.Slice(4, (int)n));
    }
}
