using BlkTapCtrl.Testing;
using BlkTapCtrl.Vhd.Format;
using BlkTapCtrl.Vhd.Image;
using BlkTapCtrl.Vhd.Operations;
using BlkTapCtrl.Worker.Drivers;
using BlkTapCtrl.Worker.IO;
using BlkTapCtrl.Worker.Tests.Support;
using static BlkTapCtrl.Worker.Tests.Support.VhdFixtures;

namespace BlkTapCtrl.Worker.Tests.Drivers;

/// <summary>
/// §5 CA-27617 redundant bitmap write, through an instrumented backend under the real driver: a plain
/// write starting at sector 0 of a batmap-full block not at first_db also writes 4 KiB ending at the
/// bitmap's end, at bat[k]·512 − 3584; none for first_db, partial blocks, mid-block writes or fixed disks.
/// </summary>
[TestFixture]
public class VhdRedundantBitmapTests
{
    private const int Spb = 4096;

    /// <summary>A dynamic disk whose blocks 0..3 are full (block 0 at first_db), written through the driver.</summary>
    private static (string Path, byte[] Model) FullBlocks(TempDir dir)
    {
        string path = Dynamic(dir, "d.vhd", 16);
        var model = new byte[16 << 20];
        using var e = new VhdEngine(path);
        e.RequireOpen();
        for (int b = 0; b < 4; b++)
        {
            var data = Pattern(Spb * 512, b);
            e.Write((long)b * Spb, data);
            data.CopyTo(model, (long)b * Spb * 512);
        }
        // Block 5 only partly written.
        var part = Pattern(100 * 512, 50);
        e.Write(5L * Spb, part);
        part.CopyTo(model, 5L * Spb * 512);
        return (path, model);
    }

    private static List<(long Offset, long Length)> Pads(InstrumentedIoQueue q) =>
        q.Executed.Where(x => x.Op == IoOperation.Write && x.Length == 4096).Select(x => (x.Offset, x.Length)).ToList();

    [Test]
    public void CA27617_sector_0_writes_to_full_blocks_after_first_db_write_a_4KiB_pad_ending_at_the_bitmap()
    {
        using var dir = new TempDir("ca276");
        var (path, model) = FullBlocks(dir);
        var queue = new InstrumentedIoQueue();
        using var e = new VhdEngine(path, queueFactory: (_, _) => queue);
        e.RequireOpen();
        var driver = (VhdImageDriver)e.Vbd.Chain!.Leaf.Driver;
        var vhd = driver.Image;
        Assert.That(vhd.Bat[0], Is.EqualTo((uint)vhd.FirstDataSector), "block 0 sits at first_db");
        queue.Executed.Clear();
        for (int b = 0; b < 4; b++)
        {
            var data = Pattern(64 * 512, 100 + b);
            e.Write((long)b * Spb, data); // sector 0 of each full block
            data.CopyTo(model, (long)b * Spb * 512);
        }
        var expected = new[] { 1, 2, 3 }.Select(k => ((long)vhd.Bat[k] * 512 - 3584, 4096L)).ToList();
        Assert.That(Pads(queue), Is.EqualTo(expected), "one pad per full block except the first_db one");
        Assert.That(driver.GapsWritten, Is.EqualTo(3));
        using var file = File.OpenHandle(path);
        foreach (var (offset, _) in expected)
        {
            var pad = new byte[4096];
            RandomAccess.Read(file, pad, offset);
            Assert.That(pad.AsSpan(0, 3584).ContainsAnyExcept((byte)0), Is.False, "zeros over the alignment gap");
            Assert.That(pad.AsSpan(3584).ContainsAnyExcept((byte)0xFF), Is.False, "0xFF over the bitmap");
        }
        Assert.That(e.ReadAll(), Is.EqualTo(model), "the pad destroys nothing");
        e.Close();
        Assert.That(VhdChecker.Check(path).Problems, Is.Empty);
    }

    [Test]
    public void CA27617_no_pad_for_partial_blocks_or_mid_block_writes()
    {
        using var dir = new TempDir("ca27p");
        var (path, _) = FullBlocks(dir);
        var queue = new InstrumentedIoQueue();
        using var e = new VhdEngine(path, queueFactory: (_, _) => queue);
        e.RequireOpen();
        queue.Executed.Clear();
        e.Write(5L * Spb, Pattern(16 * 512, 1));       // sector 0 of a partial block (bits set, batmap bit clear)
        e.Write(2L * Spb + 8, Pattern(16 * 512, 2));   // mid-block of a full block
        e.Write(3L * Spb + 1, Pattern(16 * 512, 3));   // one sector in
        Assert.That(Pads(queue), Is.Empty);
    }

    [Test]
    public void CA27617_no_pad_for_fixed_disks()
    {
        using var dir = new TempDir("ca27f");
        string path = dir["f.vhd"];
        VhdCreator.Create(path, new VhdCreateOptions { SizeBytes = 4 << 20, Type = DiskType.Fixed });
        var queue = new InstrumentedIoQueue();
        using var e = new VhdEngine(path, queueFactory: (_, _) => queue);
        e.RequireOpen();
        e.Write(0, Pattern(Spb * 512, 1));
        e.Write(Spb, Pattern(64 * 512, 2));
        Assert.That(Pads(queue), Is.Empty);
        Assert.That(queue.Executed.Where(x => x.Op == IoOperation.Write).Select(x => x.Offset), Is.EqualTo(new[] { 0L, Spb * 512L }));
    }

    [Test]
    public void CA27617_no_pad_where_the_4KiB_before_the_bitmap_hold_another_blocks_data()
    {
        // Blocks packed with no gap (as qemu places them): the original's pad would have zeroed the
        // previous block's last 7 sectors.
        using var dir = new TempDir("ca27q");
        string path = Dynamic(dir, "d.vhd", 8);
        var model = new byte[8 << 20];
        WriteWithLibrary(path, model, 0, Pattern(Spb * 512, 1));
        using (var image = VhdImage.Open(path))
        {
            // Move block 1 right after block 0 (no gap), full, with its batmap bit.
            long at = image.Bat[0] + 1 + Spb;
            var data = Pattern(Spb * 512, 2);
            var bitmap = new byte[512];
            bitmap.AsSpan().Fill(0xFF);
            RandomAccess.Write(image.Handle, bitmap, at * 512);
            RandomAccess.Write(image.Handle, data, (at + 1) * 512);
            data.CopyTo(model, Spb * 512);
            image.Bat[1] = (uint)at;
            SectorBitmap.Set(image.Batmap!, 1);
            image.WriteBat();
            image.WriteBatmap();
            RandomAccess.SetLength(image.Handle, (at + 1 + Spb) * 512);
        }
        using (var image = VhdImage.Open(path))
            image.WriteFooter(); // the end of the data moved: footer after block 1 (and the backup)
        Assert.That(VhdChecker.Check(path).Problems, Is.Empty, "the crafted packed layout is valid");
        var queue = new InstrumentedIoQueue();
        using var e = new VhdEngine(path, queueFactory: (_, _) => queue);
        e.RequireOpen();
        var write = Pattern(16 * 512, 3);
        e.Write(Spb, write);
        write.CopyTo(model, Spb * 512);
        Assert.That(Pads(queue), Is.Empty);
        Assert.That(((VhdImageDriver)e.Vbd.Chain!.Leaf.Driver).GapsSkipped, Is.EqualTo(1));
        Assert.That(e.ReadAll(), Is.EqualTo(model), "block 0's tail intact");
    }
}
