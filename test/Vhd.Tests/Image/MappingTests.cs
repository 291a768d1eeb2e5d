using BlkTapCtrl.Testing;
using BlkTapCtrl.Vhd.Format;
using BlkTapCtrl.Vhd.Image;
using BlkTapCtrl.Vhd.Operations;
using BlkTapCtrl.Vhd.Tests.Support;

namespace BlkTapCtrl.Vhd.Tests.Image;

public class MappingTests
{
    [Test]
    public void Chain_read_is_split_only_at_block_and_bitmap_run_boundaries()
    {
        using var dir = new TempDir();
        GoldenImages.Unpack(dir);
        using var chain = VhdChain.Open(dir["leaf.vhd"], VhdOpenFlags.ReadOnly);
        // leaf: sectors 8191..8199 written (block 1's last sector, block 2's first 8).
        // mid: 4096..6143 written. base: 0..6143 written.
        var runs = new List<SectorRun>();
        long s = 8000, n = 400;
        while (n > 0)
        {
            var r = chain.MapRun(s, n);
            if (r.Kind == RunKind.BitmapNeeded) { chain.Images[r.Level].LoadBitmap(r.Block); continue; }
            runs.Add(r);
            s += r.Count; n -= r.Count;
        }
        Assert.That(runs.Select(r => (r.Kind, r.Level, r.Sector, r.Count)), Is.EqualTo(new[]
        {
            (RunKind.Zero, 2, 8000L, 191),      // absent in leaf, mid, base (base wrote 0..6143)
            (RunKind.Present, 0, 8191L, 1),     // leaf block 1, last sector
            (RunKind.Present, 0, 8192L, 8),     // leaf block 2: new block, new run
            (RunKind.Zero, 2, 8200L, 200),
        }));
        Assert.That(runs[1].FileOffset, Is.EqualTo((0xfL + 1 + 4095) * 512));
    }

    [Test]
    public void Unwritten_runs_continue_across_blocks_and_stop_at_the_parent_size()
    {
        using var dir = new TempDir();
        VhdCreator.Create(dir["p.vhd"], new VhdCreateOptions { SizeBytes = 4 << 20 });
        VhdCreator.Create(dir["c.vhd"], new VhdCreateOptions { SizeBytes = 10 << 20, Type = DiskType.Differencing, ParentPath = dir["p.vhd"] });
        using var chain = VhdChain.Open(dir["c.vhd"]);
        var leafRun = chain.Leaf.MapRun(0, 20480);
        Assert.That((leafRun.Kind, leafRun.Count), Is.EqualTo((RunKind.Absent, 8192)));
        var tail = chain.Leaf.MapRun(8192, 20480 - 8192);
        Assert.That((tail.Kind, tail.Count), Is.EqualTo((RunKind.Zero, 20480 - 8192)));
        var chainRun = chain.MapRun(0, 20480);
        Assert.That((chainRun.Kind, chainRun.Count, chainRun.Level), Is.EqualTo((RunKind.Zero, 8192, 1)));
    }

    [Test]
    public void Allocation_plan_places_data_on_4KiB_boundaries_like_blktap()
    {
        using var dir = new TempDir();
        GoldenImages.Unpack(dir);
        using var image = VhdImage.Open(dir["base.vhd"]);
        Assert.That(image.NextFreeSector, Is.EqualTo(8208));
        Assert.That(image.FirstDataSector, Is.EqualTo(7));
        var w = image.ClassifyWrite(2 * 4096 + 5, 3);
        Assert.That(w.Kind, Is.EqualTo(WriteKind.Allocate));
        var plan = image.BeginAllocation(2);
        Assert.That(image.ClassifyWrite(3 * 4096, 1).Kind, Is.EqualTo(WriteKind.Locked));
        Assert.That(plan.GapSectors, Is.EqualTo(7));
        Assert.That(plan.BitmapSector, Is.EqualTo(8215));
        Assert.That(plan.DataSector % 8, Is.EqualTo(0));
        Assert.That(plan.ZeroStartSector, Is.EqualTo(8208));
        Assert.That(plan.ZeroSectors, Is.EqualTo(8));
        Assert.That(plan.BatSectorFileOffset, Is.EqualTo(1536));
        var sector = new byte[512];
        plan.FillBatSector(sector);
        Assert.That(System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(sector.AsSpan(8)), Is.EqualTo(8215u));
        Assert.That(System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(sector.AsSpan(0)), Is.EqualTo(7u));
        Assert.That(image.Bat[2], Is.EqualTo(BlockAllocationTable.Unused), "BAT changes only on commit");
        var bm = image.CommitAllocation(plan);
        Assert.That(image.Bat[2], Is.EqualTo(8215u));
        Assert.That(image.NextFreeSector, Is.EqualTo(8216 + 4096));
        Assert.That(bm.IsEmpty, Is.True);
        Assert.That(image.MarkWritten(2, 0, 4096), Is.True, "a full block sets its batmap bit");
        Assert.That(image.IsBlockFull(2), Is.True);
    }

    [Test]
    public void Bat_sector_of_block_200_covers_entries_128_to_255()
    {
        using var dir = new TempDir();
        VhdCreator.Create(dir["big.vhd"], new VhdCreateOptions { SizeBytes = 1UL << 30 });
        using var image = VhdImage.Open(dir["big.vhd"]);
        var plan = image.BeginAllocation(200);
        Assert.That(plan.FirstBatEntry, Is.EqualTo(128u));
        Assert.That(plan.BatSectorFileOffset, Is.EqualTo(1536 + 512));
        image.AbortAllocation(plan);
    }

    [Test]
    public void Sync_writes_read_back_through_a_fresh_open_and_set_batmap_when_full()
    {
        using var dir = new TempDir();
        VhdCreator.Create(dir["d.vhd"], new VhdCreateOptions { SizeBytes = 8 << 20 });
        var rnd = new Random(5);
        var full = new byte[2 << 20];
        rnd.NextBytes(full);
        var part = new byte[4096];
        rnd.NextBytes(part);
        using (var image = VhdImage.Open(dir["d.vhd"]))
        {
            image.Write(4096, full);
            image.Write(3, part);
        }
        using var again = VhdImage.Open(dir["d.vhd"], VhdOpenFlags.ReadOnly);
        Assert.That(again.IsBlockFull(1), Is.True);
        Assert.That(again.IsBlockFull(0), Is.False);
        var back = new byte[2 << 20];
        again.Read(4096, back);
        AssertBytes.Equal(full, back, "block 1 read back");
        var p = new byte[4096 + 1024];
        again.Read(2, p);
        Assert.That(p.AsSpan(512, 4096).ToArray(), Is.EqualTo(part));
        Assert.That(p.AsSpan(0, 512).ToArray(), Is.All.EqualTo(0));
        Assert.That(again.Bat[0] + 1 % 8, Is.Not.Zero);
        Assert.That((again.Bat[0] + again.BitmapSectors) % 8, Is.EqualTo(0), "data 4 KiB aligned");
    }

    /// <summary>
    /// The batched synchronous write path (gathered bitmap+data, footer moved before the BAT sector,
    /// batmap header+bitmap in one write) must leave after every call a file that ends in a valid
    /// footer right after the data, passes check, and reads back as the model, for each shape of write:
    /// allocation at a block's start and in its middle, bitmap updates at the start and in the middle,
    /// the write that fills a block (batmap bit), plain overwrites, and a write spanning blocks.
    /// </summary>
    [Test]
    public void Every_sync_write_shape_leaves_a_checked_file_ending_in_its_footer()
    {
        using var dir = new TempDir();
        var path = dir["w.vhd"];
        VhdCreator.Create(path, new VhdCreateOptions { SizeBytes = 12 << 20 });
        var model = new byte[12 << 20];
        var back = new byte[model.Length]; // one read-back buffer: a fresh 12 MiB array per step costs page faults
        var rnd = new Random(9);
        (long Sector, int Sectors)[] writes =
        [
            (0, 8),            // allocate, data at the block start: one gathered write
            (4096 + 100, 50),  // allocate block 1 in its middle: zeros before the data
            (8, 4088),         // bitmap update from the middle to the block end: block 0 full
            (4096, 100),       // bitmap update at the block start: gathered bitmap+data
            (16, 32),          // plain overwrite of a full block
            (3 * 4096 - 7, 4096 + 14), // spans blocks 2, 3 and 4: two allocations in one call
        ];
        foreach (var (sector, sectors) in writes)
        {
            var data = new byte[sectors * 512];
            rnd.NextBytes(data);
            data.CopyTo(model, sector * 512);
            using (var image = VhdImage.Open(path))
                image.Write(sector, data);

            using var again = VhdImage.Open(path, VhdOpenFlags.ReadOnly);
            Assert.That(again.OpenedFromBackupFooter, Is.False, $"primary footer valid after the write at {sector}");
            Assert.That(new FileInfo(path).Length, Is.EqualTo(again.EndOfData + 512), "the file ends with the footer after the data");
            Assert.That(VhdChecker.Check(path).Problems, Is.Empty);
            again.Read(0, back);
            Assert.That(back.AsSpan().SequenceEqual(model), Is.True, $"content after the write at {sector}");
        }
        using var last = VhdImage.Open(path, VhdOpenFlags.ReadOnly);
        Assert.That(last.IsBlockFull(0), Is.True);
        Assert.That(last.IsBlockFull(1), Is.False);
    }
}
