using System.Buffers.Binary;

namespace BlkTapCtrl.Protocol.Nbd;

/// <summary>
/// The opening of a newstyle session: the server's greeting (NBDMAGIC, IHAVEOPT, handshake flags) and
/// the client's 32-bit flags; and the reply that ends haggling after NBD_OPT_EXPORT_NAME.
/// </summary>
public static class NbdHandshake
{
    public const int GreetingSize = 18;
    public const int ClientFlagsSize = 4;
    /// <summary>Size, flags and the 124 reserved zero bytes that NBD_FLAG_C_NO_ZEROES leaves out.</summary>
    public const int ExportNameReplySize = 8 + 2 + 124;
    public const int ExportNameReplySizeNoZeroes = 8 + 2;

    public static void WriteGreeting(Span<byte> destination, NbdHandshakeFlags flags)
    {
        CheckLength(destination.Length, GreetingSize, "greeting");
        BinaryPrimitives.WriteUInt64BigEndian(destination, NbdMagic.InitPassword);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], NbdMagic.Option);
        BinaryPrimitives.WriteUInt16BigEndian(destination[16..], (ushort)flags);
    }

    /// <summary>Client side: checks both magics and returns the server's handshake flags.</summary>
    public static NbdHandshakeFlags ReadGreeting(ReadOnlySpan<byte> source)
    {
        CheckLength(source.Length, GreetingSize, "greeting");
        ulong magic = BinaryPrimitives.ReadUInt64BigEndian(source);
        if (magic != NbdMagic.InitPassword)
            throw new NbdProtocolException($"greeting magic is 0x{magic:x16}, expected NBDMAGIC 0x{NbdMagic.InitPassword:x16}");
        ulong option = BinaryPrimitives.ReadUInt64BigEndian(source[8..]);
        if (option != NbdMagic.Option)
            throw new NbdProtocolException($"greeting second magic is 0x{option:x16}, expected IHAVEOPT (oldstyle servers are not supported)");
        return (NbdHandshakeFlags)BinaryPrimitives.ReadUInt16BigEndian(source[16..]);
    }

    public static void WriteClientFlags(Span<byte> destination, NbdClientFlags flags)
    {
        CheckLength(destination.Length, ClientFlagsSize, "client flags");
        BinaryPrimitives.WriteUInt32BigEndian(destination, (uint)flags);
    }

    /// <summary>
    /// Server side: reads the client flags. proto.md: the server MUST drop the connection on an unknown
    /// flag or a flag the server did not advertise.
    /// </summary>
    public static NbdClientFlags ReadClientFlags(ReadOnlySpan<byte> source, NbdHandshakeFlags advertised)
    {
        CheckLength(source.Length, ClientFlagsSize, "client flags");
        uint raw = BinaryPrimitives.ReadUInt32BigEndian(source);
        uint allowed = (uint)NbdClientFlags.FixedNewstyle;
        if (advertised.HasFlag(NbdHandshakeFlags.NoZeroes))
            allowed |= (uint)NbdClientFlags.NoZeroes;
        if ((raw & ~allowed) != 0)
            throw new NbdProtocolException($"client flags 0x{raw:x8} carry bits 0x{raw & ~allowed:x8} the server did not advertise");
        return (NbdClientFlags)raw;
    }

    /// <summary>The reply to NBD_OPT_EXPORT_NAME: export size, transmission flags, and (unless NO_ZEROES) 124 zeroes.</summary>
    public static int WriteExportNameReply(Span<byte> destination, ulong exportSize, NbdTransmissionFlags flags, bool noZeroes)
    {
        int size = noZeroes ? ExportNameReplySizeNoZeroes : ExportNameReplySize;
        CheckLength(destination.Length, size, "export name reply");
        BinaryPrimitives.WriteUInt64BigEndian(destination, exportSize);
        BinaryPrimitives.WriteUInt16BigEndian(destination[8..], (ushort)flags);
        destination[10..size].Clear();
        return size;
    }

    internal static void CheckLength(int actual, int needed, string what)
    {
        if (actual < needed)
            throw new ArgumentException($"{what} needs {needed} bytes, buffer has {actual}");
    }
}
