using BlkTapCtrl.Vhd.Format;
using BlkTapCtrl.Vhd.Image;
using BlkTapCtrl.Vhd.Platform;
using Microsoft.Win32.SafeHandles;

namespace BlkTapCtrl.Vhd.Operations;

/// <summary>What to create: a fixed, dynamic or differencing disk (blktap's vhd_create/vhd_snapshot).</summary>
public sealed record VhdCreateOptions
{
    /// <summary>Virtual size in bytes (rounded up to 2 MiB). For snapshots 0 means "the parent's size".</summary>
    public ulong SizeBytes { get; init; }
    public DiskType Type { get; init; } = DiskType.Dynamic;
    /// <summary>Preallocate BAT and batmap for a disk this large (vhd-util -S), for later fast resizes.</summary>
    public ulong MetadataSizeBytes { get; init; }
    /// <summary>Parent path for a differencing disk.</summary>
    public string? ParentPath { get; init; }
    /// <summary>The parent is a raw file, not a VHD.</summary>
    public bool ParentIsRaw { get; init; }
    /// <summary>Fixed UUID (tests); random when null.</summary>
    public Guid? Uuid { get; init; }
    /// <summary>Fixed creation time (tests); now when null.</summary>
    public uint? Timestamp { get; init; }
}

/// <summary>
/// Creates VHDs with blktap's layout: footer copy @0, header @512, BAT @1536 (padded to sectors),
/// batmap header and batmap, then for differencing disks the MACX, W2KU and W2RU locators (512 bytes
/// each), then the primary footer. Written in blktap's order (batmap, BAT, locators, backup footer,
/// header, primary footer); a regular file is removed again if creation fails.
/// </summary>
public static class VhdCreator
{
    public const ulong BlockSize = VhdLimits.DefaultBlockSize;

    public static void Create(string path, VhdCreateOptions options)
    {
        bool device = File.Exists(path) && NativeFile.IsBlockDevice(path);
        var handle = File.OpenHandle(path, device ? FileMode.Open : FileMode.Create, FileAccess.ReadWrite, FileShare.ReadWrite);
        try
        {
            using (handle)
                Write(handle, path, device, options);
        }
        catch
        {
            if (!device)
                try { File.Delete(path); } catch (IOException) { }
            throw;
        }
    }

    private static void Write(SafeFileHandle h, string path, bool device, VhdCreateOptions o)
    {
        ulong size = o.SizeBytes;
        VhdImage? parent = null;
        Guid parentUuid = Guid.Empty;
        string? parentPath = null;
        try
        {
            if (o.Type == DiskType.Differencing)
            {
                if (o.ParentPath == null)
                    throw new VhdFormatException("parent", null, "a differencing disk needs a parent");
                parentPath = ParentPath.Canonical(o.ParentPath);
                if (!File.Exists(parentPath))
                    throw new VhdFormatException("parent", o.ParentPath, "no such file", Errnos.ENOENT);
                ulong parentSize;
                if (o.ParentIsRaw)
                {
                    using var raw = VhdImage.OpenRaw(parentPath);
                    parentSize = (ulong)raw.FileLength;
                }
                else
                {
                    parent = VhdImage.Open(parentPath, VhdOpenFlags.ReadOnly | VhdOpenFlags.IgnoreDisabled);
                    parentSize = parent.Footer.CurrentSize;
                    parentUuid = parent.Footer.Uuid;
                }
                if (size == 0)
                    size = parentSize;
                else if (size < parentSize)
                    throw new VhdFormatException("size", size, $"smaller than the parent's {parentSize} bytes");
            }
            size = (size + BlockSize - 1) / BlockSize * BlockSize;
            if (size == 0 || size > (ulong)VhdLimits.MaxDiskBytes)
                throw new VhdFormatException("size", o.SizeBytes, $"must be between 1 byte and {VhdLimits.MaxDiskBytes} bytes");
            ulong metaSize = Math.Max(size, (o.MetadataSizeBytes + BlockSize - 1) / BlockSize * BlockSize);
            if (metaSize > (ulong)VhdLimits.MaxDiskBytes)
                throw new VhdFormatException("metadata size", o.MetadataSizeBytes, $"more than {VhdLimits.MaxDiskBytes} bytes");

            var footer = new VhdFooter
            {
                DataOffset = o.Type == DiskType.Fixed ? VhdFooter.FixedDataOffset : 512,
                Timestamp = o.Timestamp ?? VhdTimestamp.Now(),
                OriginalSize = size,
                CurrentSize = size,
                Geometry = Geometry.FromSize(size),
                Type = o.Type,
                Uuid = o.Uuid ?? Guid.NewGuid(),
            };
            var footerBytes = footer.ToBytes();

            if (o.Type == DiskType.Fixed)
            {
                if (device)
                {
                    long devSize = NativeFile.Length(h);
                    if ((ulong)devSize < size + 512)
                        throw new VhdFormatException("size", size, $"device of {devSize} bytes is too small", Errnos.ENOSPC);
                    RandomAccess.Write(h, footerBytes, devSize - 512);
                }
                else
                {
                    RandomAccess.SetLength(h, (long)size); // sparse zeros
                    RandomAccess.Write(h, footerBytes, (long)size);
                }
                return;
            }

            uint maxBat = (uint)(metaSize / BlockSize);
            var header = new DynamicHeader { TableOffset = 1536, MaxBatSize = maxBat, BlockSize = (uint)BlockSize };
            ulong batmapHeaderAt = BatmapHeader.HeaderOffsetFor(header.TableOffset, maxBat);
            var batmapHeader = new BatmapHeader
            {
                BatmapOffset = batmapHeaderAt + BatmapHeader.Size,
                BatmapSize = BatmapHeader.SectorsFor(maxBat),
            };
            var batmap = new byte[batmapHeader.BatmapSize * 512];
            batmapHeader.Checksum = batmapHeader.ComputeChecksum(batmap, size);
            long next = (long)batmapHeader.BatmapOffset + batmap.Length;

            var locatorData = new List<(long Offset, byte[] Data)>();
            if (o.Type == DiskType.Differencing)
            {
                header.ParentUuid = parentUuid;
                header.ParentTimestamp = VhdTimestamp.FromDateTime(File.GetLastWriteTimeUtc(parentPath!));
                header.ParentName = Path.GetFileName(parentPath!);
                var relative = Format.ParentPath.Relative(path, parentPath!);
                int slot = 0;
                foreach (var code in new[] { PlatformCode.Macx, PlatformCode.W2ku, PlatformCode.W2ru })
                {
                    var data = ParentLocator.Encode(code, relative);
                    uint space = (uint)((data.Length + 511) / 512 * 512);
                    header.Locators[slot++] = new ParentLocator { Code = code, DataSpace = space, DataLength = (uint)data.Length, DataOffset = (ulong)next };
                    locatorData.Add((next, data));
                    next += space;
                }
            }

            // blktap's order: batmap, BAT, locators, backup footer, header, primary footer.
            var bmh = new byte[BatmapHeader.Size];
            batmapHeader.WriteTo(bmh);
            RandomAccess.Write(h, bmh, (long)batmapHeaderAt);
            RandomAccess.Write(h, batmap, (long)batmapHeader.BatmapOffset);
            var bat = new uint[maxBat];
            Array.Fill(bat, BlockAllocationTable.Unused);
            var batBytes = new byte[BlockAllocationTable.SizeBytes(maxBat)];
            BlockAllocationTable.Write(bat, batBytes);
            RandomAccess.Write(h, batBytes, (long)header.TableOffset);
            foreach (var (offset, data) in locatorData)
            {
                var padded = new byte[(data.Length + 511) / 512 * 512];
                data.CopyTo(padded, 0);
                RandomAccess.Write(h, padded, offset);
            }
            RandomAccess.Write(h, footerBytes, 0);
            RandomAccess.Write(h, header.ToBytes(), 512);
            if (device)
            {
                RandomAccess.Write(h, footerBytes, NativeFile.Length(h) - 512);
            }
            else
            {
                RandomAccess.Write(h, footerBytes, next);
                RandomAccess.SetLength(h, next + 512);
            }
        }
        finally
        {
            parent?.Dispose();
        }
    }
}
