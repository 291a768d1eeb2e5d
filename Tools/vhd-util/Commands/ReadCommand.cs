using BlkTapCtrl.Tools.VhdUtil.Cli;
using BlkTapCtrl.Vhd;
using BlkTapCtrl.Vhd.Format;
using BlkTapCtrl.Vhd.Image;
using static BlkTapCtrl.Tools.VhdUtil.Cli.Output;

namespace BlkTapCtrl.Tools.VhdUtil.Commands;

/// <summary>
/// read -n name [-p] [-t sec] [-b blk] [-B] [-m blk] [-i sec] [-a] [-j blk] [-d blk] [-r sec] [-c num] [-x]:
/// headers, logical→physical translation, BAT entries, the BAT as a bitmap, sector bitmaps, bitmap
/// tests, batmap, batmap tests, block data and chain data.
/// </summary>
public static class ReadCommand
{
    public static int Run(IReadOnlyList<string> args)
    {
        var g = new Getopt(args, "n:pt:b:Bm:i:aj:d:c:r:xh");
        string? name = null;
        bool headers = false, hex = false, batmap = false, batBitmap = false;
        ulong? lsec = null, bat = null, bitmap = null, tbitmap = null, tbatmap = null, data = null, read = null;
        ulong count = 1;
        bool bad = g.Invalid || g.Positionals.Count > 0;
        foreach (var (c, a) in g.Options)
        {
            switch (c)
            {
                case 'n': name = a; break;
                case 'p': headers = true; break;
                case 't': lsec = Getopt.ParseUnsigned(a); break;
                case 'b': bat = Getopt.ParseUnsigned(a); break;
                case 'B': batBitmap = true; break;
                case 'm': bitmap = Getopt.ParseUnsigned(a); break;
                case 'i': tbitmap = Getopt.ParseUnsigned(a); break;
                case 'a': batmap = true; break;
                case 'j': tbatmap = Getopt.ParseUnsigned(a); break;
                case 'd': data = Getopt.ParseUnsigned(a); break;
                case 'r': read = Getopt.ParseUnsigned(a); break;
                case 'c': count = Getopt.ParseUnsigned(a); break;
                case 'x': hex = true; break;
                default: bad = true; break;
            }
        }
        if (bad || name == null)
        {
            Line("options:\n-h          help\n-n          name\n-p          print VHD headers\n-t sec      translate logical sector to VHD location\n-b blk      print bat entry\n-B          print bat as a bitmap\n-m blk      print bitmap\n-i sec      test bitmap for logical sector\n-a          print batmap\n-j blk      test batmap for block\n-d blk      print data\n-c num      num units\n-r sec      read data starting at sector\n-x          print in hex");
            return -22;
        }

        VhdChain chain;
        try { chain = VhdChain.Open(name, VhdOpenFlags.ReadOnly | VhdOpenFlags.IgnoreDisabled | VhdOpenFlags.Lenient); }
        catch (VhdFormatException)
        {
            // Parents may be missing: the image alone still has headers to show.
            VhdImage alone;
            try { alone = VhdImage.Open(name, VhdOpenFlags.ReadOnly | VhdOpenFlags.IgnoreDisabled | VhdOpenFlags.Lenient); }
            catch (Exception e) when (e is VhdFormatException or IOException)
            {
                int err = Errors.From(e);
                Line($"Failed to open {name}: {err}");
                return err;
            }
            using (alone)
                return Dump(alone, null, name, headers, hex, lsec, bat, batBitmap, bitmap, tbitmap, batmap, tbatmap, data, read, count);
        }
        using (chain)
            return Dump(chain.Leaf, chain, name, headers, hex, lsec, bat, batBitmap, bitmap, tbitmap, batmap, tbatmap, data, read, count);
    }

    private static int Dump(VhdImage vhd, VhdChain? chain, string name, bool headers, bool hex, ulong? lsec, ulong? bat, bool batBitmap,
        ulong? bitmap, ulong? tbitmap, bool batmap, ulong? tbatmap, ulong? data, ulong? read, ulong count)
    {
        if (!vhd.IsDynamic)
        {
            Line($"Failed to get bat for {name}: -22");
            return -22;
        }
        if (headers)
            HeaderPrinter.All(vhd, hex);
        int err = 0;
        if (lsec is { } l && (err = Translate(vhd, l, count, hex)) != 0) return err;
        if (bat is { } b && (err = PrintBat(vhd, b, count, hex)) != 0) return err;
        if (batBitmap) PrintBatBitmap(vhd);
        if (bitmap is { } m && (err = PrintBitmap(vhd, m, count, hex)) != 0) return err;
        if (tbitmap is { } ti && (err = TestBitmap(vhd, ti, count, hex)) != 0) return err;
        if (batmap && (err = PrintBatmap(vhd)) != 0) return err;
        if (tbatmap is { } tj && (err = TestBatmap(vhd, tj, count, hex)) != 0) return err;
        if (data is { } d && (err = PrintData(vhd, d, count, hex)) != 0) return err;
        if (read is { } r && (err = ReadData(vhd, chain, r, count)) != 0) return err;
        return 0;
    }

    private static int Translate(VhdImage vhd, ulong sector, ulong count, bool hex)
    {
        if ((sector + count) * 512 > vhd.Footer.CurrentSize)
        {
            Console.Error.WriteLine($"sector {Conv(hex, sector + count)} past end of file");
            return -34;
        }
        ulong spb = (ulong)vhd.SectorsPerBlock;
        for (ulong i = 0; i < count; i++)
        {
            ulong cur = sector + i, blk = cur / spb, sec = cur % spb;
            uint entry = vhd.Bat[blk];
            string off = entry == BlockAllocationTable.Unused ? "not allocated" : Conv(hex, ((ulong)entry + sec + (ulong)vhd.BitmapSectors) * 512);
            Line($"logical sector {Conv(hex, cur)}: block number: {Conv(hex, blk)}, sector offset: {Conv(hex, sec)}, file offset: {off}");
        }
        return 0;
    }

    private static bool PastBat(VhdImage vhd, ulong block, bool hex)
    {
        if (block < vhd.BlockCount)
            return false;
        Console.Error.WriteLine($"block {Conv(hex, block)} past end of bat ({Conv(hex, (ulong)vhd.BlockCount)})");
        return true;
    }

    private static int PrintBat(VhdImage vhd, ulong block, ulong count, bool hex)
    {
        if (PastBat(vhd, block, hex)) return -34;
        for (ulong i = 0; i < count && block + i < vhd.BlockCount; i++)
        {
            uint e = vhd.Bat[block + i];
            Line($"block: {Conv(hex, block + i)}: offset: {(e == BlockAllocationTable.Unused ? "not allocated" : Conv(hex, (ulong)e * 512))}");
        }
        return 0;
    }

    private static void PrintBatBitmap(VhdImage vhd)
    {
        var map = new byte[(vhd.BlockCount + 7) / 8];
        for (int i = 0; i < vhd.BlockCount; i++)
            if (vhd.Bat[i] != BlockAllocationTable.Unused)
                SectorBitmap.Set(map, i);
        Raw(map);
    }

    private static int PrintBitmap(VhdImage vhd, ulong block, ulong count, bool hex)
    {
        if (PastBat(vhd, block, hex)) return -34;
        for (ulong i = 0; i < count && block + i < vhd.BlockCount; i++)
        {
            uint b = (uint)(block + i);
            if (!vhd.IsBlockAllocated(b)) { Line($"block {Conv(hex, (ulong)b)} not allocated"); continue; }
            var buf = new byte[vhd.BitmapBytes];
            VhdImage.ReadExactly(vhd.Handle, buf, vhd.BitmapFileOffset(b), "bitmap");
            Raw(buf);
        }
        return 0;
    }

    private static int TestBitmap(VhdImage vhd, ulong sector, ulong count, bool hex)
    {
        if ((sector + count) * 512 > vhd.Footer.CurrentSize)
        {
            Line($"sector {Conv(hex, sector)} past end of file");
            return -34;
        }
        ulong spb = (ulong)vhd.SectorsPerBlock;
        for (ulong i = 0; i < count; i++)
        {
            ulong cur = sector + i;
            uint blk = (uint)(cur / spb);
            int sec = (int)(cur % spb);
            int bit = vhd.IsBlockAllocated(blk) && vhd.LoadBitmap(blk).IsSet(sec) ? 1 : 0;
            Line($"block {Conv(hex, (ulong)blk)}: sec: {Conv(hex, (ulong)sec)}: {bit}");
        }
        return 0;
    }

    private static int PrintBatmap(VhdImage vhd)
    {
        if (!vhd.HasBatmap) { Line("failed to read batmap: -22"); return -22; }
        Raw(vhd.Batmap);
        return 0;
    }

    private static int TestBatmap(VhdImage vhd, ulong block, ulong count, bool hex)
    {
        if (block >= vhd.Header!.MaxBatSize)
        {
            Line($"block {Conv(hex, block)} past end of bat ({Conv(hex, (ulong)vhd.Header.MaxBatSize)})");
            return -34;
        }
        if (!vhd.HasBatmap) { Line($"vhd {vhd.Path} does not have a batmap"); return -22; }
        for (ulong i = 0; i < count && block + i < vhd.Header.MaxBatSize; i++)
            Console.Error.WriteLine($"batmap for block {Conv(hex, block + i)}: {(vhd.IsBlockFull((uint)(block + i)) ? 1 : 0)}");
        return 0;
    }

    private static int PrintData(VhdImage vhd, ulong block, ulong count, bool hex)
    {
        if (PastBat(vhd, block, hex)) return -34;
        var buf = new byte[vhd.Header!.BlockSize];
        for (ulong i = 0; i < count && block + i < vhd.BlockCount; i++)
        {
            uint b = (uint)(block + i);
            if (!vhd.IsBlockAllocated(b)) { Line($"block {Conv(hex, (ulong)b)} not allocated"); continue; }
            VhdImage.ReadExactly(vhd.Handle, buf, vhd.DataFileOffset(b, 0), "block data");
            Raw(buf);
        }
        return 0;
    }

    private static int ReadData(VhdImage vhd, VhdChain? chain, ulong sector, ulong count)
    {
        if ((sector + count) * 512 > vhd.Footer.CurrentSize)
            return -34;
        var buf = new byte[Math.Min(count * 512, 2UL << 20)];
        while (count > 0)
        {
            int secs = (int)Math.Min((ulong)buf.Length / 512, count);
            var part = buf.AsSpan(0, secs * 512);
            if (chain != null) chain.Read((long)sector, part); else vhd.Read((long)sector, part);
            Raw(part);
            sector += (ulong)secs;
            count -= (ulong)secs;
        }
        return 0;
    }
}
