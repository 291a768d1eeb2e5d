using BlkTapCtrl.Vhd.Format;
using BlkTapCtrl.Vhd.Platform;

namespace BlkTapCtrl.Vhd.Image;

public sealed partial class VhdImage
{
    /// <summary>End of the data in bytes (libvhd's end of data): where a file's primary footer goes.</summary>
    public long EndOfData => IsDynamic ? NextFreeSector * 512 : (long)Footer.CurrentSize;

    /// <summary>Physical size as vhd-util query -s reports it: end of data plus the footer.</summary>
    public long PhysicalSize => IsDynamic ? EndOfData + VhdFooter.Size : FileLength - (FileLength % 512 == 511 ? -1 : 0);

    /// <summary>
    /// Writes the footer (CA-19010): on a block device at device end − 512, on a file at the end of the
    /// data with the file then cut to end + 512; dynamic disks also get the backup copy at offset 0.
    /// The checksum is recomputed.
    /// </summary>
    public void WriteFooter() => WriteFooter(includeBackup: true);

    /// <param name="includeBackup">False when only the primary moved (a block was appended) and the
    /// footer's content, hence the backup copy, is unchanged.</param>
    public void WriteFooter(bool includeBackup)
    {
        RequireWritable();
        var bytes = Footer.ToBytes();
        if (IsDynamic && (includeBackup || OpenedFromBackupFooter))
            RandomAccess.Write(Handle, bytes, 0);
        if (IsBlockDevice)
        {
            RandomAccess.Write(Handle, bytes, FileLength - VhdFooter.Size);
        }
        else
        {
            long at = EndOfData;
            RandomAccess.Write(Handle, bytes, at);
            if (RandomAccess.GetLength(Handle) > at + VhdFooter.Size)
                RandomAccess.SetLength(Handle, at + VhdFooter.Size);
            FileLength = at + VhdFooter.Size;
        }
        OpenedFromBackupFooter = false;
        PrimaryFooterIsOpenedMarker = false;
        LegacyShortFooter = false;
    }

    /// <summary>
    /// After a synchronous write appended blocks: each allocation already put the primary footer at
    /// the new end of data, so a file only needs cutting if it was longer, and the backup copy only if
    /// the open had to use it. A block device's footer does not move; it is rewritten as before.
    /// </summary>
    private void CompleteAppendFooter(long lengthBefore)
    {
        if (IsBlockDevice || OpenedFromBackupFooter)
        {
            WriteFooter(includeBackup: false);
            return;
        }
        long end = EndOfData + VhdFooter.Size;
        if (lengthBefore > end)
            RandomAccess.SetLength(Handle, end);
        FileLength = end;
        PrimaryFooterIsOpenedMarker = false;
        LegacyShortFooter = false;
    }

    /// <summary>Writes only the backup footer copy at offset 0 (dynamic disks).</summary>
    public void WriteBackupFooter()
    {
        RequireWritable();
        RandomAccess.Write(Handle, Footer.ToBytes(), 0);
    }

    public void WriteHeader()
    {
        RequireWritable();
        RandomAccess.Write(Handle, Header!.ToBytes(), (long)Footer.DataOffset);
    }

    /// <summary>Writes the whole BAT (all max_bat_size entries, zero padded).</summary>
    public void WriteBat()
    {
        RequireWritable();
        var b = new byte[BlockAllocationTable.SizeBytes(Header!.MaxBatSize)];
        BlockAllocationTable.Write(Bat, b);
        RandomAccess.Write(Handle, b, (long)Header.TableOffset);
    }

    /// <summary>Writes the batmap bitmap and its header (with a fresh checksum).</summary>
    public void WriteBatmap()
    {
        if (Batmap == null || BatmapHeader == null)
            return;
        RequireWritable();
        BatmapHeader.Checksum = BatmapHeader.ComputeChecksum(Batmap, Footer.CurrentSize);
        Span<byte> h = stackalloc byte[BatmapHeader.Size];
        BatmapHeader.WriteTo(h);
        long headerAt = (long)BatmapHeader.HeaderOffsetFor(Header!.TableOffset, Header.MaxBatSize);
        // blktap places the bitmap right after its header: then both go in one gathered write.
        if ((long)BatmapHeader.BatmapOffset == headerAt + BatmapHeader.Size)
        {
            NativeFile.WriteGather(Handle, h, Batmap, headerAt);
        }
        else
        {
            RandomAccess.Write(Handle, Batmap, (long)BatmapHeader.BatmapOffset);
            RandomAccess.Write(Handle, h, headerAt);
        }
        BatmapDirty = false;
    }

    /// <summary>At close of a written image: BAT, batmap and footer (tapdisk's close path).</summary>
    public void FlushMetadata()
    {
        RequireWritable();
        if (IsDynamic)
        {
            WriteBat();
            WriteBatmap();
        }
        WriteFooter();
    }

    /// <summary>tapdisk's strict open: overwrite the last 512 bytes with 0xC7 so a crash is detectable.</summary>
    public void WriteOpenedMarker()
    {
        RequireWritable();
        if (!IsDynamic)
            return;
        var marker = new byte[VhdFooter.Size];
        marker.AsSpan().Fill(0xC7);
        long at = IsBlockDevice ? FileLength - VhdFooter.Size : EndOfData;
        RandomAccess.Write(Handle, marker, at);
        PrimaryFooterIsOpenedMarker = true;
    }

    /// <summary>Replaces the footer in memory (callers then write it).</summary>
    public void SetFooter(VhdFooter footer) => Footer = footer;

    /// <summary>Replaces the header in memory (callers then write it).</summary>
    public void SetHeader(DynamicHeader header) => Header = header;

    /// <summary>Sets the batmap in memory (used by tools that build one).</summary>
    internal void SetBatmap(BatmapHeader header, byte[] map)
    {
        BatmapHeader = header;
        Batmap = map;
    }

    internal void SetBat(uint[] bat) => Bat = bat;

    internal void SetNextFree(long sector) => NextFreeSector = sector;

    internal void RecomputeLayout()
    {
        EndOfMetadataSector = ComputeEndOfMetadata() / 512;
        long next = EndOfMetadataSector;
        long span = SectorsPerBlock + BitmapSectors;
        foreach (var e in Bat)
            if (e != BlockAllocationTable.Unused)
                next = Math.Max(next, e + span);
        NextFreeSector = next;
    }

    internal void ForgetBitmaps() => _bitmaps.Clear();

    private void RequireWritable()
    {
        if (ReadOnly)
            throw new VhdFormatException("open mode", "read-only", $"cannot write to {Path}", Errnos.EPERM);
    }
}
