using BlkTapCtrl.Vhd.Format;

namespace BlkTapCtrl.Vhd.Image;

public sealed partial class VhdImage
{
    /// <summary>Byte offset of a block's sector bitmap.</summary>
    public long BitmapFileOffset(uint block) => (long)Bat[block] * 512;

    /// <summary>Byte offset of a sector of an allocated block's data.</summary>
    public long DataFileOffset(uint block, int sectorInBlock) => ((long)Bat[block] + BitmapSectors + sectorInBlock) * 512;

    public bool IsBlockAllocated(uint block) => block < Bat.Length && Bat[block] != BlockAllocationTable.Unused;

    /// <summary>The batmap says every sector of the block is written.</summary>
    public bool IsBlockFull(uint block) => Batmap != null && SectorBitmap.Test(Batmap, (int)block);

    public bool TryGetBitmap(uint block, out BlockBitmap bitmap) => _bitmaps.TryGetValue(block, out bitmap!);

    /// <summary>Installs a bitmap the driver read from <see cref="BitmapFileOffset"/>.</summary>
    public BlockBitmap InstallBitmap(uint block, ReadOnlySpan<byte> onDisk)
    {
        if (onDisk.Length < BitmapBytes)
            throw new VhdFormatException("bitmap length", onDisk.Length, $"block bitmaps are {BitmapBytes} bytes");
        if (!_bitmaps.TryGetValue(block, out var bm))
        {
            EvictBitmapsIfFull();
            bm = new BlockBitmap(block, BitmapBytes, SectorsPerBlock);
            _bitmaps[block] = bm;
        }
        onDisk[..BitmapBytes].CopyTo(bm.Committed);
        if (LegacyBitmaps)
            SectorBitmap.FromLegacyWords(bm.Committed);
        bm.Rollback();
        return bm;
    }

    /// <summary>Returns the block's bitmap, reading it synchronously if it is not cached.</summary>
    public BlockBitmap LoadBitmap(uint block)
    {
        if (_bitmaps.TryGetValue(block, out var bm))
            return bm;
        var buf = new byte[BitmapBytes];
        ReadExactly(Handle, buf, BitmapFileOffset(block), $"bitmap of block {block}");
        return InstallBitmap(block, buf);
    }

    private void EvictBitmapsIfFull()
    {
        if (_bitmaps.Count < BitmapCacheLimit)
            return;
        foreach (var key in _bitmaps.Where(kv => !kv.Value.Locked).Select(kv => kv.Key).Take(BitmapCacheLimit / 2).ToList())
            _bitmaps.Remove(key);
    }

    private void CheckRange(long sector, long count)
    {
        if (sector < 0 || count <= 0 || sector + count > VirtualSectors)
            throw new VhdFormatException("sector range", $"{sector}+{count}", $"outside the disk of {VirtualSectors} sectors");
    }

    private RunKind Unwritten(long sector) => sector < ParentSectors ? RunKind.Absent : RunKind.Zero;

    /// <summary>
    /// The longest run starting at <paramref name="sector"/> (at most <paramref name="count"/> sectors)
    /// that one I/O can serve in this image. Never performs I/O.
    /// </summary>
    public SectorRun MapRun(long sector, long count)
    {
        CheckRange(sector, count);
        int max = (int)Math.Min(count, int.MaxValue / 512);
        if (!IsDynamic)
            return new SectorRun(RunKind.Present, sector, max, sector * 512, 0);

        int spb = SectorsPerBlock;
        RunKind? kind = null;
        long pos = sector, end = sector + max;
        while (pos < end)
        {
            uint block = (uint)(pos / spb);
            int inBlock = (int)(pos % spb);
            int n = (int)Math.Min(spb - inBlock, end - pos);
            RunKind k;
            int len;
            long fileOffset = 0;
            if (Bat[block] == BlockAllocationTable.Unused)
            {
                k = Unwritten(pos);
                len = n;
            }
            else if (IsBlockFull(block))
            {
                k = RunKind.Present;
                len = n;
                fileOffset = DataFileOffset(block, inBlock);
            }
            else if (!_bitmaps.TryGetValue(block, out var bm))
            {
                if (kind != null)
                    break;
                return new SectorRun(RunKind.BitmapNeeded, pos, n, BitmapFileOffset(block), block);
            }
            else
            {
                len = SectorBitmap.RunLength(bm.Committed, inBlock, n);
                if (bm.IsSet(inBlock))
                {
                    k = RunKind.Present;
                    fileOffset = DataFileOffset(block, inBlock);
                }
                else
                {
                    k = Unwritten(pos);
                }
            }

            if (k is RunKind.Absent or RunKind.Zero)
            {
                // Unwritten runs continue across blocks but stop where the parent ends.
                if (k == RunKind.Absent && pos + len > ParentSectors)
                    len = (int)(ParentSectors - pos);
                else if (k == RunKind.Zero && pos < ParentSectors)
                    len = (int)Math.Min(len, ParentSectors - pos);
            }

            if (kind == null)
            {
                if (k == RunKind.Present)
                    return new SectorRun(k, sector, len, fileOffset, block);
                kind = k;
            }
            else if (k != kind)
                break;
            pos += len;
            if (len < n)
                break;
        }
        return new SectorRun(kind!.Value, sector, (int)(pos - sector), 0, (uint)(sector / spb));
    }

    /// <summary>Fills <paramref name="runs"/> with the runs covering the range (loading bitmaps synchronously).</summary>
    public List<SectorRun> Map(long sector, long count)
    {
        var runs = new List<SectorRun>();
        while (count > 0)
        {
            var r = MapRun(sector, count);
            if (r.Kind == RunKind.BitmapNeeded)
            {
                LoadBitmap(r.Block);
                continue;
            }
            runs.Add(r);
            sector += r.Count;
            count -= r.Count;
        }
        return runs;
    }

    /// <summary>
    /// How to write the range starting at <paramref name="sector"/>, limited to its block: blktap's
    /// classification (clear / locked / bit clear / bit set). Never performs I/O.
    /// </summary>
    public WriteRun ClassifyWrite(long sector, long count)
    {
        CheckRange(sector, count);
        if (ReadOnly)
            throw new VhdFormatException("open mode", "read-only", $"cannot write to {Path}", Errnos.EPERM);
        if (!IsDynamic)
        {
            int all = (int)Math.Min(count, int.MaxValue / 512);
            return new WriteRun(WriteKind.Plain, sector, all, sector * 512, 0, 0);
        }
        int spb = SectorsPerBlock;
        uint block = (uint)(sector / spb);
        int inBlock = (int)(sector % spb);
        int n = (int)Math.Min(spb - inBlock, count);
        if (Bat[block] == BlockAllocationTable.Unused)
        {
            var kind = PendingAllocation != null && PendingAllocation.Block != block ? WriteKind.Locked : WriteKind.Allocate;
            return new WriteRun(kind, sector, n, 0, block, inBlock);
        }
        long offset = DataFileOffset(block, inBlock);
        if (IsBlockFull(block))
            return new WriteRun(WriteKind.Plain, sector, n, offset, block, inBlock);
        if (!_bitmaps.TryGetValue(block, out var bm))
            return new WriteRun(WriteKind.BitmapNeeded, sector, n, BitmapFileOffset(block), block, inBlock);
        return new WriteRun(bm.AllSet(inBlock, n) ? WriteKind.Plain : WriteKind.BitmapUpdate, sector, n, offset, block, inBlock);
    }
}
