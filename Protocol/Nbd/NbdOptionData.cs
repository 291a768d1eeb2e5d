using System.Buffers.Binary;
using System.Text;

namespace BlkTapCtrl.Protocol.Nbd;

/// <summary>
/// Option data the server cannot accept (truncated, trailing bytes, bad string). Unlike
/// <see cref="NbdProtocolException"/> the session survives: the option is answered NBD_REP_ERR_INVALID
/// with this message.
/// </summary>
public sealed class NbdInvalidOptionException(string message) : Exception(message);

/// <summary>Strings on the NBD wire: UTF-8, no NUL, at most 4096 bytes.</summary>
public static class NbdString
{
    public const int MaxBytes = 4096;

    public static string Decode(ReadOnlySpan<byte> bytes, string field)
    {
        if (bytes.Length > MaxBytes)
            throw new NbdInvalidOptionException($"{field} is {bytes.Length} bytes, the limit is {MaxBytes}");
        if (bytes.IndexOf((byte)0) >= 0)
            throw new NbdInvalidOptionException($"{field} contains a NUL byte");
        try { return new UTF8Encoding(false, true).GetString(bytes); }
        catch (DecoderFallbackException) { throw new NbdInvalidOptionException($"{field} is not valid UTF-8"); }
    }

    /// <summary>Reads a 32-bit length and that many bytes of string, advancing <paramref name="data"/>.</summary>
    internal static string ReadPrefixed(ref ReadOnlySpan<byte> data, string field)
    {
        if (data.Length < 4)
            throw new NbdInvalidOptionException($"{field} length is missing ({data.Length} bytes left)");
        uint length = BinaryPrimitives.ReadUInt32BigEndian(data);
        data = data[4..];
        if (length > (uint)data.Length)
            throw new NbdInvalidOptionException($"{field} length {length} exceeds the {data.Length} bytes left in the option");
        string value = Decode(data[..(int)length], field);
        data = data[(int)length..];
        return value;
    }

    internal static void WritePrefixed(Span<byte> destination, ref int offset, string value)
    {
        int n = Encoding.UTF8.GetBytes(value, destination[(offset + 4)..]);
        BinaryPrimitives.WriteUInt32BigEndian(destination[offset..], (uint)n);
        offset += 4 + n;
    }
}

/// <summary>Data of NBD_OPT_INFO and NBD_OPT_GO: export name and the information items requested.</summary>
public sealed record NbdInfoRequest(string ExportName, IReadOnlyList<NbdInfoType> Requests)
{
    public static NbdInfoRequest Parse(ReadOnlySpan<byte> data)
    {
        string name = NbdString.ReadPrefixed(ref data, "export name");
        if (data.Length < 2)
            throw new NbdInvalidOptionException($"number of information requests is missing ({data.Length} bytes left)");
        int count = BinaryPrimitives.ReadUInt16BigEndian(data);
        data = data[2..];
        if (data.Length != count * 2)
            throw new NbdInvalidOptionException($"{count} information requests need {count * 2} bytes, option has {data.Length}");
        var requests = new NbdInfoType[count];
        for (int i = 0; i < count; i++)
            requests[i] = (NbdInfoType)BinaryPrimitives.ReadUInt16BigEndian(data[(i * 2)..]);
        return new NbdInfoRequest(name, requests);
    }

    public byte[] Encode()
    {
        var bytes = new byte[4 + Encoding.UTF8.GetByteCount(ExportName) + 2 + 2 * Requests.Count];
        int offset = 0;
        NbdString.WritePrefixed(bytes, ref offset, ExportName);
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(offset), (ushort)Requests.Count);
        offset += 2;
        foreach (var r in Requests)
        {
            BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(offset), (ushort)r);
            offset += 2;
        }
        return bytes;
    }
}

/// <summary>Data of NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT: export name and queries.</summary>
public sealed record NbdMetaContextRequest(string ExportName, IReadOnlyList<string> Queries)
{
    public static NbdMetaContextRequest Parse(ReadOnlySpan<byte> data)
    {
        string name = NbdString.ReadPrefixed(ref data, "export name");
        if (data.Length < 4)
            throw new NbdInvalidOptionException($"number of queries is missing ({data.Length} bytes left)");
        uint count = BinaryPrimitives.ReadUInt32BigEndian(data);
        data = data[4..];
        // Each query needs at least its 4-byte length: a count beyond that is a lie, not a reason to allocate.
        if (count > (uint)data.Length / 4)
            throw new NbdInvalidOptionException($"{count} queries cannot fit in the {data.Length} bytes left in the option");
        var queries = new string[count];
        for (int i = 0; i < count; i++)
            queries[i] = NbdString.ReadPrefixed(ref data, $"query {i}");
        if (!data.IsEmpty)
            throw new NbdInvalidOptionException($"{data.Length} bytes follow the last query");
        return new NbdMetaContextRequest(name, queries);
    }

    public byte[] Encode()
    {
        int size = 4 + Encoding.UTF8.GetByteCount(ExportName) + 4;
        foreach (var q in Queries) size += 4 + Encoding.UTF8.GetByteCount(q);
        var bytes = new byte[size];
        int offset = 0;
        NbdString.WritePrefixed(bytes, ref offset, ExportName);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(offset), (uint)Queries.Count);
        offset += 4;
        foreach (var q in Queries)
            NbdString.WritePrefixed(bytes, ref offset, q);
        return bytes;
    }
}
