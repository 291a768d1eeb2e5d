using BlkTapCtrl.Vhd.Format;
using BlkTapCtrl.Vhd.Platform;
using Microsoft.Win32.SafeHandles;

namespace BlkTapCtrl.Vhd.Image;

/// <summary>
/// One open VHD file or block device (or a raw parent file): its footer, header, BAT, batmap and a
/// cache of sector bitmaps.
/// <para>How the worker uses this: open the chain with <see cref="VhdChain.Open"/> (metadata I/O at open
/// is synchronous), then per request call <see cref="MapRun"/> (or <see cref="VhdChain.MapRun"/>) in a
/// loop to turn a virtual range into file runs and issue the reads itself on <see cref="Handle"/>.
/// A <see cref="RunKind.BitmapNeeded"/> run asks the driver to read <see cref="BitmapBytes"/> at
/// <see cref="BitmapFileOffset"/> and hand them to <see cref="InstallBitmap"/>. Writes:
/// <see cref="ClassifyWrite"/>, then for <see cref="WriteKind.Allocate"/> <see cref="BeginAllocation"/> →
/// issue the planned writes → <see cref="CommitAllocation"/>; after bitmap-updating writes call
/// <see cref="MarkWritten"/>. At close, <see cref="FlushMetadata"/> writes BAT, batmap and footer.</para>
/// vhd-util uses the synchronous <see cref="Read"/>/<see cref="Write"/> (libvhd style) instead.
/// </summary>
public sealed partial class VhdImage : IDisposable
{
    private readonly Dictionary<uint, BlockBitmap> _bitmaps = new();
    private const int BitmapCacheLimit = 4096;

    private VhdImage(string path, SafeFileHandle handle, bool readOnly, bool blockDevice, VhdFooter footer)
    {
        Path = path;
        CanonicalPath = ParentPath.Canonical(path);
        Handle = handle;
        ReadOnly = readOnly;
        IsBlockDevice = blockDevice;
        Footer = footer;
    }

    /// <summary>The path as given to <see cref="Open"/>.</summary>
    public string Path { get; }
    public string CanonicalPath { get; }
    public SafeFileHandle Handle { get; }
    public bool ReadOnly { get; }
    public bool IsBlockDevice { get; }
    /// <summary>A raw parent (no VHD metadata; the whole file is data).</summary>
    public bool IsRaw { get; private set; }
    public VhdFooter Footer { get; private set; }
    public DynamicHeader? Header { get; private set; }
    /// <summary>BAT entries (max_bat_size of them); empty for fixed and raw images.</summary>
    public uint[] Bat { get; private set; } = [];
    public BatmapHeader? BatmapHeader { get; private set; }
    public byte[]? Batmap { get; private set; }
    public bool HasBatmap => Batmap != null;
    /// <summary>The primary footer was unusable (0xC7 "opened" marker, torn write): the backup at 0 was used.</summary>
    public bool OpenedFromBackupFooter { get; private set; }
    /// <summary>The primary footer was the 511-byte legacy footer.</summary>
    public bool LegacyShortFooter { get; private set; }
    /// <summary>The last sector held tapdisk's all-0xC7 "opened" marker.</summary>
    public bool PrimaryFooterIsOpenedMarker { get; private set; }
    /// <summary>Why the primary footer was rejected, when <see cref="OpenedFromBackupFooter"/>.</summary>
    public VhdFormatException? PrimaryFooterError { get; private set; }

    public bool IsDynamic => !IsRaw && Footer.IsDynamic;
    public bool IsDifferencing => !IsRaw && Footer.Type == DiskType.Differencing;
    public bool HasRawParent => IsDifferencing && Header!.ParentUuid == Guid.Empty;
    public long VirtualSectors => IsRaw ? _rawSectors : Footer.CurrentSectors;
    private long _rawSectors;
    public int SectorsPerBlock => Header?.SectorsPerBlock ?? 0;
    public int BitmapSectors => Header?.BitmapSectors ?? 0;
    public int BitmapBytes => BitmapSectors * 512;
    /// <summary>Blocks covering the virtual size.</summary>
    public uint BlockCount => Header == null ? 0 : (uint)((Footer.CurrentSize + Header.BlockSize - 1) / Header.BlockSize);
    /// <summary>Virtual sectors the parent provides (set by the chain); beyond them unwritten sectors read as zero.</summary>
    public long ParentSectors { get; internal set; }
    public VhdImage? Parent { get; internal set; }
    /// <summary>First sector after all metadata (header, BAT, batmap, locators).</summary>
    public long EndOfMetadataSector { get; private set; }
    /// <summary>First free sector after the data (blktap's next_db); the file's primary footer sits here.</summary>
    public long NextFreeSector { get; private set; }
    /// <summary>Bitmap sector of a block allocated right after the metadata (blktap's first_db).</summary>
    public long FirstDataSector => EndOfMetadataSector + (8 - (EndOfMetadataSector + BitmapSectors) % 8) % 8;
    /// <summary>Bytes of the file (or device) when opened, including the footer.</summary>
    public long FileLength { get; private set; }
    /// <summary>An allocation planned and not yet committed (blktap allows one at a time).</summary>
    public BlockAllocation? PendingAllocation { get; private set; }
    /// <summary>`tap` creator 0.1: bitmaps are little-endian 32-bit words (read-only support).</summary>
    public bool LegacyBitmaps => Footer.IsTapCreated && Footer.CreatorVersion == 0x00000001;
    public bool BatmapDirty { get; private set; }

    public static VhdImage Open(string path, VhdOpenFlags flags = VhdOpenFlags.None)
    {
        bool readOnly = flags.HasFlag(VhdOpenFlags.ReadOnly);
        SafeFileHandle handle;
        try
        {
            handle = File.OpenHandle(path, FileMode.Open, readOnly ? FileAccess.Read : FileAccess.ReadWrite, FileShare.ReadWrite);
        }
        catch (FileNotFoundException e) { throw new VhdFormatException("path", path, "no such file", Errnos.ENOENT, e); }
        catch (DirectoryNotFoundException e) { throw new VhdFormatException("path", path, "no such file", Errnos.ENOENT, e); }
        catch (UnauthorizedAccessException e) { throw new VhdFormatException("path", path, "permission denied", Errnos.EACCES, e); }
        try
        {
            bool device = NativeFile.IsBlockDevice(path);
            long length = NativeFile.Length(handle);
            var footer = ReadFooter(handle, length, flags, out var fromBackup, out var legacy, out var marker, out var primaryError);
            var image = new VhdImage(path, handle, readOnly, device, footer)
            {
                FileLength = length,
                OpenedFromBackupFooter = fromBackup,
                LegacyShortFooter = legacy,
                PrimaryFooterIsOpenedMarker = marker,
                PrimaryFooterError = primaryError,
            };
            image.LoadMetadata(flags);
            return image;
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>Opens a raw file as the bottom of a chain (a differencing disk's raw parent).</summary>
    public static VhdImage OpenRaw(string path, bool readOnly = true)
    {
        SafeFileHandle handle;
        try
        {
            handle = File.OpenHandle(path, FileMode.Open, readOnly ? FileAccess.Read : FileAccess.ReadWrite, FileShare.ReadWrite);
        }
        catch (FileNotFoundException e) { throw new VhdFormatException("path", path, "no such file", Errnos.ENOENT, e); }
        long length = NativeFile.Length(handle);
        var image = new VhdImage(path, handle, readOnly, NativeFile.IsBlockDevice(path), new VhdFooter { Type = DiskType.Fixed, CurrentSize = (ulong)(length / 512 * 512) })
        {
            IsRaw = true,
            _rawSectors = length / 512,
            FileLength = length,
        };
        return image;
    }

    private static bool FooterUsable(VhdFooter f, VhdOpenFlags flags)
    {
        try
        {
            f.Validate(flags.HasFlag(VhdOpenFlags.IgnoreDisabled));
            return true;
        }
        catch (VhdFormatException) { return false; }
    }

    private static VhdFooter ReadFooter(SafeFileHandle h, long length, VhdOpenFlags flags,
        out bool fromBackup, out bool legacy, out bool marker, out VhdFormatException? primaryError)
    {
        fromBackup = legacy = marker = false;
        primaryError = null;
        if (length < VhdFooter.Size)
            throw new VhdFormatException("file size", length, "smaller than a VHD footer (512 bytes)");
        var buf = new byte[VhdFooter.Size];
        ReadExactly(h, buf, length - VhdFooter.Size, "primary footer");
        marker = !buf.AsSpan().ContainsAnyExcept((byte)0xC7);
        var primary = VhdFooter.Parse(buf);
        try
        {
            primary.Validate(flags.HasFlag(VhdOpenFlags.IgnoreDisabled));
            return primary;
        }
        catch (VhdFormatException e) { primaryError = e; }

        if (length % 512 == 511)
        {
            // Old writers left a 511-byte footer (the last byte of the reserved area missing).
            Array.Clear(buf);
            ReadExactly(h, buf.AsSpan(0, 511), length - 511, "legacy footer");
            var shortFooter = VhdFooter.Parse(buf);
            if (FooterUsable(shortFooter, flags))
            {
                legacy = true;
                return shortFooter;
            }
        }

        // CA-29010: the backup copy at offset 0 is used for every open, strict ones included.
        ReadExactly(h, buf, 0, "backup footer");
        var backup = VhdFooter.Parse(buf);
        if (FooterUsable(backup, flags) && backup.IsDynamic)
        {
            fromBackup = true;
            return backup;
        }
        throw primaryError;
    }

    /// <summary>pread until the buffer is full; a short file is a format error naming what was read.</summary>
    public static void ReadExactly(SafeFileHandle h, Span<byte> buffer, long offset, string what)
    {
        // Offsets come from the image itself (header, BAT, locators, batmap): a u64 field with its top
        // bit set casts to a negative long, which pread would reject with an ArgumentOutOfRangeException.
        if (offset < 0 || offset > long.MaxValue - buffer.Length)
            throw new VhdFormatException(what + " offset", (ulong)offset, "not a byte offset any file can have", Errnos.EINVAL);
        int done = 0;
        while (done < buffer.Length)
        {
            int n = RandomAccess.Read(h, buffer[done..], offset + done);
            if (n <= 0)
                throw new VhdFormatException(what + " offset", offset, $"beyond the end of the file ({buffer.Length} bytes needed)", Errnos.EIO);
            done += n;
        }
    }

    private void LoadMetadata(VhdOpenFlags flags)
    {
        if (!Footer.IsDynamic)
        {
            // Fixed: data [0, size), footer right after it.
            if ((ulong)FileLength < Footer.CurrentSize + VhdFooter.Size - (LegacyShortFooter ? 1UL : 0UL))
                throw new VhdFormatException("footer current size", Footer.CurrentSize, $"a fixed disk of this size needs a file of {Footer.CurrentSize + 512} bytes, found {FileLength}");
            NextFreeSector = Footer.CurrentSectors;
            EndOfMetadataSector = 0;
            return;
        }

        long fileEnd = FileLength;
        if ((long)Footer.DataOffset + DynamicHeader.Size > fileEnd)
            throw new VhdFormatException("footer data offset", Footer.DataOffset, $"header would end beyond the file ({fileEnd} bytes)");
        var hb = new byte[DynamicHeader.Size];
        ReadExactly(Handle, hb, (long)Footer.DataOffset, "header");
        var header = DynamicHeader.Parse(hb);
        header.Validate(Footer.CurrentSize);
        Header = header;

        int batBytes = BlockAllocationTable.SizeBytes(header.MaxBatSize);
        if ((long)header.TableOffset + batBytes > fileEnd)
            throw new VhdFormatException("header table offset", header.TableOffset, $"a BAT of {header.MaxBatSize} entries would end beyond the file ({fileEnd} bytes)");
        var bb = new byte[batBytes];
        ReadExactly(Handle, bb, (long)header.TableOffset, "BAT");
        Bat = BlockAllocationTable.Parse(bb, header.MaxBatSize);

        LoadBatmap(fileEnd);
        for (int i = 0; i < DynamicHeader.LocatorCount; i++)
        {
            var loc = header.Locators[i];
            if (loc.Code == PlatformCode.None)
                continue;
            if (Footer.Type == DiskType.Differencing && loc.Code is PlatformCode.Macx or PlatformCode.W2ku or PlatformCode.W2ru)
            {
                if (loc.SpaceBytes < 0)
                    throw new VhdFormatException($"locator {i} data space", loc.DataSpace, "neither a sector count (< 512) nor a byte count (multiple of 512)");
                if (loc.DataLength > loc.SpaceBytes || (long)loc.DataOffset + loc.SpaceBytes > fileEnd || loc.DataOffset > (ulong)fileEnd)
                    throw new VhdFormatException($"locator {i} data offset", loc.DataOffset, $"{loc.SpaceBytes} bytes of locator space do not fit in the file ({fileEnd} bytes)");
            }
        }

        EndOfMetadataSector = ComputeEndOfMetadata() / 512;
        long next = EndOfMetadataSector;
        long blockSpan = SectorsPerBlock + BitmapSectors;
        for (int i = 0; i < Bat.Length; i++)
            if (Bat[i] != BlockAllocationTable.Unused)
                next = Math.Max(next, Bat[i] + blockSpan);
        NextFreeSector = next;
        if (!flags.HasFlag(VhdOpenFlags.Lenient))
            ValidateBat();
    }

    private void LoadBatmap(long fileEnd)
    {
        var header = Header!;
        if (!Footer.IsTapCreated || Footer.CreatorVersion < 0x00010001)
            return;
        ulong at = BatmapHeader.HeaderOffsetFor(header.TableOffset, header.MaxBatSize);
        if ((long)at + BatmapHeader.Size > fileEnd)
            return;
        var b = new byte[BatmapHeader.Size];
        ReadExactly(Handle, b, (long)at, "batmap header");
        var bh = BatmapHeader.Parse(b);
        // 1.1: a batmap exists only if its header validates. 1.2+: written always; an unreadable one
        // (e.g. qemu allocated a block over it) is ignored: the sector bitmaps stay authoritative.
        if (!bh.HasValidCookie || bh.BatmapVersion > BatmapHeader.CurrentVersion || bh.BatmapSize == 0
            || bh.BatmapSize > BatmapHeader.SectorsFor(VhdLimits.MaxBatEntries)
            || (long)bh.BatmapOffset + bh.BatmapSize * 512L > fileEnd || bh.BatmapOffset < at + BatmapHeader.Size)
            return;
        var map = new byte[bh.BatmapSize * 512];
        ReadExactly(Handle, map, (long)bh.BatmapOffset, "batmap");
        if (bh.ComputeChecksum(map, Footer.CurrentSize) != bh.Checksum)
            return;
        if ((long)header.MaxBatSize > (long)map.Length * 8)
            return;
        BatmapHeader = bh;
        Batmap = map;
    }

    /// <summary>End of header, BAT, batmap and locator data in bytes (libvhd's end of headers).</summary>
    public long ComputeEndOfMetadata()
    {
        if (Header == null)
            return 0;
        long end = (long)Footer.DataOffset + DynamicHeader.Size;
        end = Math.Max(end, (long)Header.TableOffset + BlockAllocationTable.SizeBytes(Header.MaxBatSize));
        if (BatmapHeader != null)
        {
            end = Math.Max(end, (long)BatmapHeader.HeaderOffsetFor(Header.TableOffset, Header.MaxBatSize) + BatmapHeader.Size);
            end = Math.Max(end, (long)BatmapHeader.BatmapOffset + BatmapHeader.BatmapSize * 512L);
        }
        foreach (var loc in Header.Locators)
            if (loc.Code != PlatformCode.None && loc.SpaceBytes > 0)
                end = Math.Max(end, (long)loc.DataOffset + loc.SpaceBytes);
        return end;
    }

    /// <summary>Every used BAT entry must lie between the metadata and the footer and not overlap another.</summary>
    private void ValidateBat()
    {
        long span = SectorsPerBlock + BitmapSectors;
        long limit = IsBlockDevice ? (FileLength - VhdFooter.Size) / 512 : long.MaxValue;
        var used = new List<(uint Offset, int Block)>();
        for (int i = 0; i < Bat.Length; i++)
        {
            uint e = Bat[i];
            if (e == BlockAllocationTable.Unused)
                continue;
            if (e < EndOfMetadataSector)
                throw new VhdFormatException($"BAT entry {i}", e, $"block overlaps the metadata (which ends at sector {EndOfMetadataSector})");
            if (e + span > limit)
                throw new VhdFormatException($"BAT entry {i}", e, $"block runs past the footer at sector {limit}");
            if (!IsBlockDevice && (e + span) * 512 > FileLength)
                throw new VhdFormatException($"BAT entry {i}", e, $"block ends beyond the file ({FileLength} bytes)");
            used.Add((e, i));
        }
        used.Sort((a, b) => a.Offset.CompareTo(b.Offset));
        for (int i = 1; i < used.Count; i++)
            if (used[i].Offset < used[i - 1].Offset + span)
                throw new VhdFormatException($"BAT entry {used[i].Block}", used[i].Offset, $"block overlaps block {used[i - 1].Block} at sector {used[i - 1].Offset}");
    }

    /// <summary>Parent locator paths in slot order (MACX, W2KU, W2RU only), decoded; unreadable ones skipped.</summary>
    public List<(int Slot, uint Code, string Path)> ReadLocatorPaths()
    {
        var result = new List<(int, uint, string)>();
        if (Header == null)
            return result;
        for (int i = 0; i < DynamicHeader.LocatorCount; i++)
        {
            var loc = Header.Locators[i];
            if (loc.Code is not (PlatformCode.Macx or PlatformCode.W2ku or PlatformCode.W2ru))
                continue;
            try { result.Add((i, loc.Code, ReadLocator(loc))); }
            catch (VhdFormatException) { }
        }
        return result;
    }

    /// <summary>Reads and decodes one locator's data.</summary>
    public string ReadLocator(ParentLocator loc)
    {
        if (loc.SpaceBytes < 0 || loc.DataLength > loc.SpaceBytes || loc.DataLength > 64 * 1024)
            throw new VhdFormatException("locator data length", loc.DataLength, $"does not fit its data space {loc.DataSpace}");
        var data = new byte[loc.DataLength];
        ReadExactly(Handle, data, (long)loc.DataOffset, "locator data");
        return ParentLocator.Decode(loc.Code, data);
    }

    /// <summary>The parent's canonical path from the locators (first that resolves), or null.</summary>
    public string? ResolveParentPath()
    {
        foreach (var (_, _, p) in ReadLocatorPaths())
        {
            var hit = ParentPath.Resolve(Path, p);
            if (hit != null)
                return hit;
        }
        return null;
    }

    public void Dispose()
    {
        Handle.Dispose();
    }
}
