using System.Buffers.Binary;

namespace BlkTapCtrl.Protocol.XenStore;

/// <summary>
/// The 16-byte <c>struct xsd_sockmsg</c> that precedes every payload: type, req_id, tx_id, len, each a
/// 32-bit integer in the host's byte order (little-endian on every platform Xen's dom0 runs on).
/// </summary>
public readonly record struct XsHeader(XsMessageType Type, uint RequestId, uint TransactionId, uint Length)
{
    public const int Size = 16;

    public static XsHeader Read(ReadOnlySpan<byte> source)
    {
        if (source.Length < Size)
            throw new XsProtocolException($"xenstore header needs {Size} bytes, got {source.Length}");
        return new XsHeader(
            (XsMessageType)BinaryPrimitives.ReadUInt32LittleEndian(source),
            BinaryPrimitives.ReadUInt32LittleEndian(source[4..]),
            BinaryPrimitives.ReadUInt32LittleEndian(source[8..]),
            BinaryPrimitives.ReadUInt32LittleEndian(source[12..]));
    }

    public void Write(Span<byte> destination)
    {
        if (destination.Length < Size)
            throw new ArgumentException($"xenstore header needs {Size} bytes, destination has {destination.Length}", nameof(destination));
        BinaryPrimitives.WriteUInt32LittleEndian(destination, (uint)Type);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], RequestId);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..], TransactionId);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[12..], Length);
    }

    public override string ToString() =>
        $"{XsMessageTypes.Name(Type)} req_id={RequestId} tx_id={TransactionId} len={Length}";
}
