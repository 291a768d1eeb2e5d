using BlkTapCtrl.Vhd.Format;
using BlkTapCtrl.Vhd.Image;

namespace BlkTapCtrl.Vhd.Operations;

/// <summary>
/// vhd-util resize. Fast mode grows within the preallocated BAT (max_bat_size) by rewriting the
/// footer only. Journaled mode first records every region it will overwrite in the journal, then:
/// growing beyond the BAT enlarges BAT and batmap in place, moving data blocks that are in the way
/// to the end of the file and rewriting the locators after the new batmap; shrinking drops the BAT
/// entries (and batmap bits) beyond the new size. The journal is deleted when done; after a crash
/// <see cref="VhdJournal.Revert"/> undoes the partial change. Sizes are rounded up to whole blocks.
/// </summary>
public static class VhdResizer
{
    public static void FastResize(string path, ulong newSize)
    {
        using var image = VhdImage.Open(path);
        RequireTap(image);
        newSize = RoundToBlock(image, newSize);
        ulong blocks = newSize / image.Header!.BlockSize;
        if (newSize < image.Footer.CurrentSize)
            throw new VhdFormatException("size", newSize, $"fast resize only grows (current {image.Footer.CurrentSize})");
        if (blocks > image.Header.MaxBatSize)
            throw new VhdFormatException("size", newSize, $"beyond the preallocated BAT of {image.Header.MaxBatSize} blocks", Errnos.EINVAL);
        SetSize(image, newSize);
    }

    public static void JournaledResize(string path, ulong newSize, string journalPath)
    {
        if (File.Exists(journalPath))
            throw new VhdFormatException("journal", journalPath, "already exists", Errnos.EEXIST);
        VhdImage image = VhdImage.Open(path);
        try
        {
            RequireTap(image);
            newSize = RoundToBlock(image, newSize);
            if (newSize > (ulong)VhdLimits.MaxDiskBytes)
                throw new VhdFormatException("size", newSize, $"more than {VhdLimits.MaxDiskBytes} bytes", Errnos.EFBIG);
            var header = image.Header!;
            uint newBlocks = (uint)(newSize / header.BlockSize);
            if (newBlocks <= header.MaxBatSize)
            {
                // Within the BAT: journal the footers, BAT and batmap, then change the size.
                VhdJournal.Create(journalPath, path, image.Footer.Uuid, MetadataRegions(image));
                if (newSize < image.Footer.CurrentSize)
                    DropBlocksBeyond(image, newBlocks);
                SetSize(image, newSize);
            }
            else
            {
                long newEnd = NewMetadataEnd(image, newBlocks);
                // Everything up to the new end of metadata (and the old metadata) may be rewritten.
                long prefix = Math.Max(newEnd, image.EndOfMetadataSector * 512);
                var regions = new List<(long, long)> { (0, prefix) };
                regions.AddRange(MetadataRegions(image));
                VhdJournal.Create(journalPath, path, image.Footer.Uuid, regions);
                Grow(image, newBlocks, newSize);
            }
        }
        finally
        {
            image.Dispose();
        }
        File.Delete(journalPath);
    }

    private static IEnumerable<(long, long)> MetadataRegions(VhdImage image)
    {
        yield return (0, 512);
        yield return (image.FileLength - 512, 512);
        yield return ((long)image.Footer.DataOffset, DynamicHeader.Size);
        yield return ((long)image.Header!.TableOffset, BlockAllocationTable.SizeBytes(image.Header.MaxBatSize));
        if (image.BatmapHeader != null)
        {
            yield return ((long)BatmapHeader.HeaderOffsetFor(image.Header.TableOffset, image.Header.MaxBatSize), 512);
            yield return ((long)image.BatmapHeader.BatmapOffset, image.Batmap!.Length);
        }
    }

    private static void RequireTap(VhdImage image)
    {
        if (!image.IsDynamic || !image.Footer.IsTapCreated)
            throw new VhdFormatException("creator application", System.Text.Encoding.Latin1.GetString(image.Footer.CreatorApplication).TrimEnd('\0'),
                "only dynamic/differencing VHDs created by tap can be resized");
    }

    private static ulong RoundToBlock(VhdImage image, ulong size)
    {
        ulong bs = image.Header!.BlockSize;
        if (size == 0)
            throw new VhdFormatException("size", size, "must be positive");
        return (size + bs - 1) / bs * bs;
    }

    private static void SetSize(VhdImage image, ulong newSize)
    {
        image.Footer.CurrentSize = newSize;
        image.Footer.Geometry = Geometry.FromSize(newSize);
        if (image.HasBatmap)
            image.WriteBatmap();
        image.WriteFooter();
    }

    private static void DropBlocksBeyond(VhdImage image, uint newBlocks)
    {
        var bat = image.Bat;
        for (uint b = newBlocks; b < bat.Length; b++)
        {
            bat[b] = BlockAllocationTable.Unused;
            if (image.Batmap != null)
                SectorBitmap.Clear(image.Batmap, (int)b);
        }
        image.ForgetBitmaps();
        image.WriteBat();
    }

    private static long NewMetadataEnd(VhdImage image, uint newBlocks)
    {
        var h = image.Header!;
        long end = (long)h.TableOffset + BlockAllocationTable.SizeBytes(newBlocks);
        if (image.BatmapHeader != null)
            end += 512 + BatmapHeader.SectorsFor(newBlocks) * 512L;
        foreach (var loc in h.Locators)
            if (loc.Code != PlatformCode.None && loc.SpaceBytes > 0)
                end += loc.SpaceBytes;
        return Math.Max(end, (long)image.Footer.DataOffset + DynamicHeader.Size);
    }

    private static void Grow(VhdImage image, uint newBlocks, ulong newSize)
    {
        var h = image.Header!;
        long newEndSectors = (NewMetadataEnd(image, newBlocks) + 511) / 512;
        int span = image.SectorsPerBlock + image.BitmapSectors;

        // Read locator data before anything moves.
        var locators = new List<(int Slot, ParentLocator Loc, byte[] Data)>();
        for (int i = 0; i < DynamicHeader.LocatorCount; i++)
        {
            var loc = h.Locators[i];
            if (loc.Code == PlatformCode.None || loc.SpaceBytes <= 0) continue;
            var data = new byte[loc.SpaceBytes];
            VhdImage.ReadExactly(image.Handle, data, (long)loc.DataOffset, "locator data");
            locators.Add((i, loc, data));
        }

        // Move blocks that overlap the new metadata area to the end of the data.
        var bat = (uint[])image.Bat.Clone();
        var buffer = new byte[span * 512];
        long next = image.NextFreeSector;
        for (int b = 0; b < bat.Length; b++)
        {
            if (bat[b] == BlockAllocationTable.Unused || bat[b] >= newEndSectors) continue;
            VhdImage.ReadExactly(image.Handle, buffer, (long)bat[b] * 512, $"block {b}");
            long gap = (8 - (next + image.BitmapSectors) % 8) % 8;
            long target = next + gap;
            if (gap > 0) image.WriteZeros(next * 512, gap * 512);
            RandomAccess.Write(image.Handle, buffer, target * 512);
            bat[b] = (uint)target;
            next = target + span;
        }

        // New BAT, batmap, locators, header, footer.
        var newBat = new uint[newBlocks];
        Array.Fill(newBat, BlockAllocationTable.Unused);
        Array.Copy(bat, newBat, Math.Min(bat.Length, newBat.Length));
        h.MaxBatSize = newBlocks;
        long at = (long)h.TableOffset + BlockAllocationTable.SizeBytes(newBlocks);
        image.SetBat(newBat);
        if (image.BatmapHeader != null)
        {
            var bh = image.BatmapHeader;
            var map = new byte[BatmapHeader.SectorsFor(newBlocks) * 512];
            var old = image.Batmap!;
            old.AsSpan(0, Math.Min(map.Length, old.Length)).CopyTo(map);
            bh.BatmapOffset = (ulong)(at + 512);
            bh.BatmapSize = BatmapHeader.SectorsFor(newBlocks);
            image.SetBatmap(bh, map);
            at += 512 + map.Length;
        }
        foreach (var (slot, loc, data) in locators)
        {
            var moved = loc;
            moved.DataOffset = (ulong)at;
            h.Locators[slot] = moved;
            RandomAccess.Write(image.Handle, data, at);
            at += data.Length;
        }
        image.Footer.CurrentSize = newSize;
        image.Footer.Geometry = Geometry.FromSize(newSize);
        image.WriteBat();
        image.WriteBatmap();
        image.WriteHeader();
        image.RecomputeLayout();
        image.ForgetBitmaps();
        image.WriteFooter();
    }
}
