using System.Buffers.Binary;
using BlkTapCtrl.Vhd.Format;

namespace BlkTapCtrl.Vhd.Operations;

/// <summary>
/// The undo journal of a journaled resize (vhd-util resize -j, revert -j). Before the VHD's metadata
/// is changed, the journal records the original bytes of every region that will be overwritten and
/// the file's original length; <see cref="Revert"/> writes them back and cuts the file to its old
/// length. Layout (big-endian): a 512-byte header ("vjournal", VHD uuid @8, original footer offset
/// @24, entry count @32, first entry offset @40, journal end @56), then entries, each a 512-byte
/// header (cookie 0xaaaa12344321aaaa @0, type @8, size @12, offset @16, checksum @24) followed by the
/// data padded to whole sectors.
/// </summary>
public static class VhdJournal
{
    public static ReadOnlySpan<byte> Cookie => "vjournal"u8;
    public const ulong EntryCookie = 0xaaaa12344321aaaaUL;
    public const uint TypeData = 0x08;

    /// <summary>Creates the journal with the given regions of the VHD (offset, length) copied.</summary>
    public static void Create(string journalPath, string vhdPath, Guid uuid, IEnumerable<(long Offset, long Length)> regions)
    {
        using var vhd = File.OpenHandle(vhdPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        long vhdLength = Platform.NativeFile.Length(vhd);
        using var j = File.OpenHandle(journalPath, FileMode.CreateNew, FileAccess.ReadWrite);
        long at = 512;
        uint entries = 0;
        foreach (var (offset, length) in regions)
        {
            long len = Math.Min(length, Math.Max(0, vhdLength - offset));
            if (len <= 0) continue;
            var data = new byte[(len + 511) / 512 * 512];
            int got = 0;
            while (got < len)
            {
                int n = RandomAccess.Read(vhd, data.AsSpan(got, (int)(len - got)), offset + got);
                if (n <= 0) break;
                got += n;
            }
            var eh = new byte[512];
            BinaryPrimitives.WriteUInt64BigEndian(eh, EntryCookie);
            BinaryPrimitives.WriteUInt32BigEndian(eh.AsSpan(8), TypeData);
            BinaryPrimitives.WriteUInt32BigEndian(eh.AsSpan(12), (uint)len);
            BinaryPrimitives.WriteUInt64BigEndian(eh.AsSpan(16), (ulong)offset);
            BinaryPrimitives.WriteUInt32BigEndian(eh.AsSpan(24), VhdChecksum.Compute(data.AsSpan(0, (int)len)));
            RandomAccess.Write(j, eh, at);
            RandomAccess.Write(j, data, at + 512);
            at += 512 + data.Length;
            entries++;
        }
        var h = new byte[512];
        Cookie.CopyTo(h);
        uuid.TryWriteBytes(h.AsSpan(8, 16), bigEndian: true, out _);
        BinaryPrimitives.WriteUInt64BigEndian(h.AsSpan(24), (ulong)vhdLength);
        BinaryPrimitives.WriteUInt32BigEndian(h.AsSpan(32), entries);
        BinaryPrimitives.WriteUInt64BigEndian(h.AsSpan(40), 512);
        BinaryPrimitives.WriteUInt64BigEndian(h.AsSpan(56), (ulong)at);
        RandomAccess.Write(j, h, 0);
        RandomAccess.FlushToDisk(j);
    }

    /// <summary>Restores the VHD from the journal and deletes the journal.</summary>
    public static void Revert(string journalPath, string vhdPath)
    {
        using (var j = File.OpenHandle(journalPath, FileMode.Open, FileAccess.Read))
        {
            long jlen = RandomAccess.GetLength(j);
            var h = new byte[512];
            if (jlen < 512 || RandomAccess.Read(j, h, 0) != 512 || !h.AsSpan(0, 8).SequenceEqual(Cookie))
                throw new VhdFormatException("journal cookie", System.Text.Encoding.Latin1.GetString(h, 0, 8), "expected 'vjournal'");
            long originalLength = (long)BinaryPrimitives.ReadUInt64BigEndian(h.AsSpan(24));
            uint entries = BinaryPrimitives.ReadUInt32BigEndian(h.AsSpan(32));
            long at = (long)BinaryPrimitives.ReadUInt64BigEndian(h.AsSpan(40));
            var restore = new List<(long Offset, byte[] Data)>();
            for (uint i = 0; i < entries; i++)
            {
                var eh = new byte[512];
                if (at + 512 > jlen || RandomAccess.Read(j, eh, at) != 512)
                    throw new VhdFormatException($"journal entry {i} offset", at, "beyond the end of the journal");
                if (BinaryPrimitives.ReadUInt64BigEndian(eh) != EntryCookie)
                    throw new VhdFormatException($"journal entry {i} cookie", BinaryPrimitives.ReadUInt64BigEndian(eh), "expected 0xaaaa12344321aaaa");
                uint size = BinaryPrimitives.ReadUInt32BigEndian(eh.AsSpan(12));
                long offset = (long)BinaryPrimitives.ReadUInt64BigEndian(eh.AsSpan(16));
                uint sum = BinaryPrimitives.ReadUInt32BigEndian(eh.AsSpan(24));
                long padded = (size + 511L) / 512 * 512;
                if (at + 512 + padded > jlen)
                    throw new VhdFormatException($"journal entry {i} size", size, "beyond the end of the journal");
                var data = new byte[size];
                Vhd.Image.VhdImage.ReadExactly(j, data, at + 512, "journal data");
                if (VhdChecksum.Compute(data) != sum)
                    throw new VhdFormatException($"journal entry {i} checksum", sum, "data does not match its checksum");
                restore.Add((offset, data));
                at += 512 + padded;
            }
            // Validate everything before touching the VHD, then write back.
            using var vhd = File.OpenHandle(vhdPath, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
            foreach (var (offset, data) in restore)
                RandomAccess.Write(vhd, data, offset);
            if (!Platform.NativeFile.IsBlockDevice(vhdPath))
                RandomAccess.SetLength(vhd, originalLength);
            RandomAccess.FlushToDisk(vhd);
        }
        File.Delete(journalPath);
    }
}
