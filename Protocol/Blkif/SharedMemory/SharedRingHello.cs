using System.Buffers.Binary;

namespace BlkTapCtrl.Protocol.Blkif.SharedMemory;

/// <summary>
/// The message a shared-memory ring device sends to the frontend that connects to its unix socket
/// (our own transport, standing in for Xen's grant tables and event channels): 32 bytes
/// {magic "BTSHRING", version u32, flags u32, sectors u64, sector size u32, mapping pages u32},
/// little-endian, carrying three fds by SCM_RIGHTS in this order: the shared file (page 0 ring, then
/// 11 data pages per slot), the eventfd the frontend writes to kick the backend, and the eventfd the
/// backend writes to kick the frontend.
/// </summary>
public readonly record struct SharedRingHello(uint Flags, ulong Sectors, uint SectorSize, uint MappingPages)
{
    public const int Size = 32;
    public const ulong Magic = 0x474E495248535442; // "BTSHRING" little-endian
    public const uint CurrentVersion = 1;
    public const uint ReadOnlyFlag = 1;
    public const int FdCount = 3;

    public bool ReadOnly => (Flags & ReadOnlyFlag) != 0;

    public void WriteTo(Span<byte> destination)
    {
        if (destination.Length < Size)
            throw new ArgumentException($"shared ring hello needs {Size} bytes, buffer has {destination.Length}");
        BinaryPrimitives.WriteUInt64LittleEndian(destination, Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..], CurrentVersion);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[12..], Flags);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[16..], Sectors);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[24..], SectorSize);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[28..], MappingPages);
    }

    public static SharedRingHello Read(ReadOnlySpan<byte> source)
    {
        if (source.Length < Size)
            throw new BlkifFormatException($"shared ring hello is {source.Length} bytes, expected {Size}");
        ulong magic = BinaryPrimitives.ReadUInt64LittleEndian(source);
        if (magic != Magic)
            throw new BlkifFormatException($"shared ring hello magic is 0x{magic:x16}, expected 0x{Magic:x16}");
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(source[8..]);
        if (version != CurrentVersion)
            throw new BlkifFormatException($"shared ring hello version {version} is not {CurrentVersion}");
        var hello = new SharedRingHello(BinaryPrimitives.ReadUInt32LittleEndian(source[12..]),
            BinaryPrimitives.ReadUInt64LittleEndian(source[16..]), BinaryPrimitives.ReadUInt32LittleEndian(source[24..]),
            BinaryPrimitives.ReadUInt32LittleEndian(source[28..]));
        if (hello.MappingPages != BlkifLayout.MappingPages)
            throw new BlkifFormatException($"shared ring maps {hello.MappingPages} pages, expected {BlkifLayout.MappingPages}");
        return hello;
    }
}
