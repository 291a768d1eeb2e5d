using System.Security.Cryptography;
using BlkTapCtrl.Protocol.Control;
using BlkTapCtrl.Testing;
using BlkTapCtrl.Vhd.Format;
using BlkTapCtrl.Vhd.Image;
using BlkTapCtrl.Vhd.Operations;
using BlkTapCtrl.Worker.Drivers;
using BlkTapCtrl.Worker.Images;
using BlkTapCtrl.Worker.Interop;
using BlkTapCtrl.Worker.IO;
using BlkTapCtrl.Worker.Server;
using BlkTapCtrl.Worker.Tests.Support;
using BlkTapCtrl.Worker.Vbd;
using static BlkTapCtrl.Worker.Tests.Support.VhdFixtures;

namespace BlkTapCtrl.Worker.Tests.Drivers;

/// <summary>
/// The vhd driver through the real VBD engine and real files: reads and writes compared with a byte
/// model on a dynamic disk and a 3-deep chain (then checked by the library and vhd-util's checker),
/// golden images of blktap's vhd-util, the allocation transaction's order, and clear open errors.
/// </summary>
[TestFixture]
public class VhdDriverTests
{
    /// <summary>Random batches of reads and writes; ranges in one batch never overlap (their order is free).</summary>
    internal static void RandomTraffic(VhdEngine e, byte[] model, int rounds, int seed, int maxSectors = 1100)
    {
        var rng = new Random(seed);
        long sectors = model.Length / 512;
        for (int round = 0; round < rounds; round++)
        {
            var ops = new List<VhdEngine.Op>();
            var taken = new List<(long, long)>();
            int n = rng.Next(1, 7);
            for (int i = 0; i < n; i++)
            {
                int len = rng.Next(1, maxSectors);
                long at = rng.NextInt64(0, sectors - len);
                if (taken.Any(t => at < t.Item2 && t.Item1 < at + len)) continue;
                taken.Add((at, at + len));
                ops.Add(rng.Next(2) == 0 ? VhdEngine.ReadOp(at, len) : VhdEngine.WriteOp(at, Pattern(len * 512, rng.Next())));
            }
            e.Run(ops);
            foreach (var op in ops)
            {
                Assert.That(op.Answers, Is.EqualTo(1));
                Assert.That(op.Error, Is.Zero, $"{op.Operation} at {op.Sector}\n{e.Log}");
                if (op.Operation == VbdOperation.Write) op.Data.CopyTo(model, op.Sector * 512);
                else Assert.That(op.Data.AsSpan().SequenceEqual(model.AsSpan((int)op.Sector * 512, op.Data.Length)), Is.True,
                    $"read of {op.Data.Length / 512} sectors at {op.Sector} differs from the model");
            }
        }
    }

    [TestCase(IoBackendKind.Synchronous)]
    [TestCase(IoBackendKind.LinuxAio)]
    [TestCase(IoBackendKind.IoUring)]
    public void Dynamic_disk_reads_and_writes_match_a_model_and_the_image_checks_clean(IoBackendKind backend)
    {
        using var dir = new TempDir("vhdd");
        string path = Dynamic(dir, "d.vhd", 16);
        var model = new byte[16 << 20];
        using (var e = new VhdEngine(path, backend: backend))
        {
            e.RequireOpen();
            RandomTraffic(e, model, 25, 7);
            Assert.That(e.ReadAll(), Is.EqualTo(model), "whole disk through the driver");
            e.Close();
            Assert.That(e.Vbd.Counters.Retries, Is.Zero, "no EBUSY ping-pong while blocks are allocated");
        }
        Assert.That(ReadWithLibrary(path), Is.EqualTo(model), "the library reads what the driver wrote");
        var report = VhdChecker.Check(path);
        Assert.That(report.Problems, Is.Empty);
        using (var again = new VhdEngine(path, backend: backend))
        {
            again.RequireOpen();
            Assert.That(again.ReadAll(), Is.EqualTo(model), "after reopening");
        }
    }

    [TestCase(IoBackendKind.Synchronous)]
    [TestCase(IoBackendKind.LinuxAio)]
    [TestCase(IoBackendKind.IoUring)]
    public void Three_deep_chain_reads_fall_through_and_writes_land_in_the_leaf(IoBackendKind backend)
    {
        using var dir = new TempDir("vhdc");
        var (leaf, model) = ThreeDeepChain(dir);
        string baseHash = Hash(dir["base.vhd"]), midHash = Hash(dir["mid.vhd"]);
        using (var e = new VhdEngine(leaf, backend: backend))
        {
            e.RequireOpen();
            Assert.That(e.Vbd.Chain!.Images.Select(i => Path.GetFileName(i.Name)), Is.EqualTo(new[] { "leaf.vhd", "mid.vhd", "base.vhd" }));
            Assert.That(e.Vbd.Chain.Images.Skip(1).All(i => i.ReadOnly), Is.True, "parents are read-only");
            Assert.That(e.ReadAll(), Is.EqualTo(model), "whole chain");
            RandomTraffic(e, model, 30, 11);
            e.Close();
        }
        Assert.That(ReadWithLibrary(leaf), Is.EqualTo(model));
        Assert.That(VhdChecker.Check(leaf).Problems, Is.Empty);
        Assert.That(Hash(dir["base.vhd"]), Is.EqualTo(baseHash), "base untouched");
        Assert.That(Hash(dir["mid.vhd"]), Is.EqualTo(midHash), "mid untouched");
    }

    [Test]
    public void A_read_crossing_leaf_parent_and_grandparent_data_is_split_only_at_run_boundaries()
    {
        using var dir = new TempDir("vhds");
        var (leaf, model) = ThreeDeepChain(dir);
        var queue = new InstrumentedIoQueue();
        using var e = new VhdEngine(leaf, queueFactory: (_, _) => queue);
        e.RequireOpen();
        e.Read(0, 4096); // load every bitmap of block 0 on each level
        queue.Executed.Clear();
        // Block 0: leaf has sectors 17..25, mid 4032..4095, base all of it.
        Assert.That(e.Read(0, 4096), Is.EqualTo(model.AsSpan(0, 4096 * 512).ToArray()));
        var reads = queue.Executed.Where(x => x.Op == IoOperation.Read).Select(x => x.Length / 512).ToArray();
        Assert.That(reads, Is.EquivalentTo(new long[] { 17, 9, 4032 - 26, 64 }), "one read per run of each level, no finer");
    }

    [Test]
    public void Writes_complete_only_after_their_bitmap_and_BAT_entry_are_written()
    {
        using var dir = new TempDir("vhdt");
        string path = Dynamic(dir, "d.vhd", 8);
        var queue = new InstrumentedIoQueue();
        using var e = new VhdEngine(path, queueFactory: (_, _) => queue);
        e.RequireOpen();
        var vhd = ((VhdImageDriver)e.Vbd.Chain!.Leaf.Driver).Image;
        e.Write(0, Pattern(4096, 9)); // block 0 takes first_db; later blocks get the full 7-sector gap
        queue.Executed.Clear();
        var op = VhdEngine.WriteOp(4096 + 8, Pattern(16 * 512, 1));
        e.Run([op]);
        Assert.That(op.Error, Is.Zero);
        long bitmapAt = (long)vhd.Bat[1] * 512;
        long batAt = (long)vhd.Header!.TableOffset;
        var writes = queue.Executed.Where(x => x.Op == IoOperation.Write).ToList();
        Assert.That(writes.Select(w => (w.Offset, w.Length)), Is.EquivalentTo(new[]
        {
            (bitmapAt - 7 * 512, 8 * 512L),           // zeros over the gap and the bitmap (before the BAT names the block)
            (bitmapAt + 512 + 8 * 512, 16 * 512L),    // the data
            (bitmapAt, 512L),                          // the shadow bitmap
            (batAt, 512L),                             // BAT sector 0
        }));
        Assert.That(queue.Executed.FindIndex(x => x.Offset == bitmapAt - 7 * 512), Is.LessThan(queue.Executed.FindIndex(x => x.Offset == batAt)),
            "the zeroed bitmap is on disk before the BAT entry");
        using var onDisk = VhdImage.Open(path, VhdOpenFlags.ReadOnly);
        Assert.That(onDisk.Bat[1], Is.EqualTo(vhd.Bat[1]), "BAT entry on disk when the write was answered");
        var bm = onDisk.LoadBitmap(1);
        Assert.That(SectorBitmap.PopCount(bm.Committed, 4096), Is.EqualTo(16));
    }

    [Test]
    public void Writes_to_a_block_being_allocated_queue_behind_the_allocation_and_new_blocks_allocate_together()
    {
        using var dir = new TempDir("vhdq");
        string path = Dynamic(dir, "d.vhd", 16);
        var model = new byte[16 << 20];
        using (var e = new VhdEngine(path))
        {
            e.RequireOpen();
            // Four writes into block 2 and one each into blocks 3..6, all in one kick.
            var ops = new List<VhdEngine.Op>();
            for (int i = 0; i < 4; i++) ops.Add(VhdEngine.WriteOp(2 * 4096 + i * 512, Pattern(256 * 512, i)));
            for (int b = 3; b <= 6; b++) ops.Add(VhdEngine.WriteOp(b * 4096L + 1000, Pattern(64 * 512, b * 10)));
            e.Run(ops);
            Assert.That(ops.Select(o => o.Error), Is.All.Zero);
            foreach (var o in ops) o.Data.CopyTo(model, o.Sector * 512);
            Assert.That(e.Vbd.Counters.Retries, Is.Zero, "nothing answered EBUSY and retried");
            var vhd = ((VhdImageDriver)e.Vbd.Chain!.Leaf.Driver).Image;
            var used = vhd.Bat.Where(x => x != BlockAllocationTable.Unused).ToList();
            Assert.That(used, Has.Count.EqualTo(5), "one allocation per block");
            Assert.That(used.Distinct().Count(), Is.EqualTo(5));
            // A second write to block 2 while its bitmap is being written waits for it and is re-classified.
            var second = new List<VhdEngine.Op> { VhdEngine.WriteOp(2 * 4096 + 2048, Pattern(8 * 512, 99)), VhdEngine.WriteOp(2 * 4096 + 2100, Pattern(8 * 512, 98)) };
            e.Run(second);
            foreach (var o in second) { Assert.That(o.Error, Is.Zero); o.Data.CopyTo(model, o.Sector * 512); }
            Assert.That(e.ReadAll(), Is.EqualTo(model));
        }
        Assert.That(ReadWithLibrary(path), Is.EqualTo(model));
        Assert.That(VhdChecker.Check(path).Problems, Is.Empty);
    }

    [TestCase("empty-16m.vhd")]
    [TestCase("fixed-4m.vhd")]
    [TestCase("prealloc-8m-s64.vhd")]
    [TestCase("base.vhd")]
    [TestCase("mid.vhd")]
    [TestCase("leaf.vhd")]
    public void Golden_images_of_blktaps_vhd_util_open_and_read_their_recorded_content(string image)
    {
        using var dir = new TempDir("vhdg");
        GoldenVhd.Unpack(dir);
        using var e = new VhdEngine(dir[image], flags: ImageOpenFlags.ReadOnly);
        e.RequireOpen();
        var all = new List<byte>();
        for (long s = 0; s < (long)e.Vbd.Sectors; s += 8192)
            all.AddRange(e.Read(s, (int)Math.Min(8192, (long)e.Vbd.Sectors - s)));
        string hash = Convert.ToHexStringLower(SHA256.HashData(all.ToArray()));
        var expected = File.ReadAllLines(Path.Combine(GoldenVhd.Dir, "expected", "content.sha256"))
            .Select(l => l.Split("  ")).FirstOrDefault(f => f[1] == Path.GetFileNameWithoutExtension(image) + ".content");
        if (expected != null) Assert.That(hash, Is.EqualTo(expected[0]));
        else Assert.That(all.All(b => b == 0), Is.True, "fixed-4m is zeros");
    }

    [Test]
    public void Golden_chain_takes_writes_and_vhd_utils_checker_agrees()
    {
        using var dir = new TempDir("vhdw");
        GoldenVhd.Unpack(dir);
        var model = ReadWithLibrary(dir["leaf.vhd"]);
        using (var e = new VhdEngine(dir["leaf.vhd"]))
        {
            e.RequireOpen();
            RandomTraffic(e, model, 15, 3);
        }
        Assert.That(ReadWithLibrary(dir["leaf.vhd"]), Is.EqualTo(model));
        Assert.That(VhdChecker.Check(dir["leaf.vhd"]).Problems, Is.Empty);
    }

    [Test]
    public void Block_status_reports_data_holes_and_parent_ranges_of_the_chain()
    {
        using var dir = new TempDir("vhda");
        var (leaf, _) = ThreeDeepChain(dir);
        using var e = new VhdEngine(leaf, flags: ImageOpenFlags.ReadOnly);
        e.RequireOpen();
        var leafImage = e.Vbd.Chain!.Leaf;
        var driver = (IImageAllocation)leafImage.Driver;
        Assert.That(driver.QueryAllocation(0, 4096, out ulong run), Is.EqualTo(AllocationState.Parent));
        Assert.That(run, Is.EqualTo(17UL));
        Assert.That(driver.QueryAllocation(17, 4096, out run), Is.EqualTo(AllocationState.Data));
        Assert.That(run, Is.EqualTo(9UL));
        // Whole chain: base holds 0..3 MiB, mid 4032..4232 and block 5, base a partial block 6; the rest is a hole.
        var extents = new List<(ulong Start, ulong Sectors, bool Allocated)>();
        for (ulong s = 0; s < e.Vbd.Sectors;)
        {
            var a = ImageChainAllocation.Query(leafImage, s, e.Vbd.Sectors - s);
            if (extents.Count > 0 && extents[^1].Allocated == a.Allocated) extents[^1] = (extents[^1].Start, extents[^1].Sectors + a.Sectors, a.Allocated);
            else extents.Add((s, a.Sectors, a.Allocated));
            s += a.Sectors;
        }
        Assert.That(extents, Is.EqualTo(new[]
        {
            (0UL, 6144UL, true), (6144UL, 5 * 4096UL + 8 - 6144, false), (5 * 4096UL + 8, 2048UL, true),
            (5 * 4096UL + 8 + 2048, 6 * 4096UL + 100 - (5 * 4096 + 8 + 2048), false), (6 * 4096UL + 100, 37UL, true),
            (6 * 4096UL + 137, 32768UL - (6 * 4096 + 137), false),
        }));
    }

    [Test]
    public void CA29010_strict_open_with_the_opened_marker_as_primary_footer_uses_the_backup_and_restores_the_footer_at_close()
    {
        using var dir = new TempDir("vhdm");
        string path = Dynamic(dir, "d.vhd", 8);
        var model = new byte[8 << 20];
        WriteWithLibrary(path, model, 100, Pattern(300 * 512, 1));
        // A tapdisk that died while the image was open leaves 0xC7 over the primary footer.
        using (var f = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite))
        {
            var marker = new byte[512];
            marker.AsSpan().Fill(0xC7);
            RandomAccess.Write(f, marker, RandomAccess.GetLength(f) - 512);
        }
        using (var e = new VhdEngine(path, flags: ImageOpenFlags.Strict))
        {
            e.RequireOpen();
            Assert.That(((VhdImageDriver)e.Vbd.Chain!.Leaf.Driver).OpenedFromBackupFooter, Is.True);
            Assert.That(e.Log, Does.Contain("backup footer"));
            Assert.That(e.Read(0, 16384), Is.EqualTo(model), "reads OK");
            var data = Pattern(5000 * 512, 2);
            e.Write(9000, data);
            data.CopyTo(model, 9000 * 512);
        }
        using var reopened = VhdImage.Open(path, VhdOpenFlags.ReadOnly);
        Assert.That(reopened.OpenedFromBackupFooter, Is.False, "primary footer restored at close");
        Assert.That(reopened.PrimaryFooterIsOpenedMarker, Is.False);
        Assert.That(ReadWithLibrary(path), Is.EqualTo(model));
        Assert.That(VhdChecker.Check(path).Problems, Is.Empty);
    }

    [Test]
    public void CA29010_a_corrupt_primary_footer_falls_back_to_the_backup_too()
    {
        using var dir = new TempDir("vhdf");
        string path = Dynamic(dir, "d.vhd", 8);
        var model = new byte[8 << 20];
        WriteWithLibrary(path, model, 0, Pattern(64 * 512, 1));
        using (var f = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite))
            RandomAccess.Write(f, new byte[] { 0x55, 0x66 }, RandomAccess.GetLength(f) - 512 + 70); // inside the UUID: checksum no longer matches
        using (var e = new VhdEngine(path))
        {
            e.RequireOpen();
            Assert.That(e.Read(0, 64), Is.EqualTo(model.AsSpan(0, 64 * 512).ToArray()));
        }
        Assert.That(VhdChecker.Check(path).Problems, Is.Empty, "footer rewritten at close");
    }

    [Test]
    public void A_read_write_open_marks_the_image_opened_and_a_read_only_open_leaves_it_alone()
    {
        using var dir = new TempDir("vhdo");
        string path = Dynamic(dir, "d.vhd", 8);
        var before = File.ReadAllBytes(path);
        using (var ro = new VhdEngine(path, flags: ImageOpenFlags.ReadOnly)) ro.RequireOpen();
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(before), "read-only open writes nothing");
        using (var rw = new VhdEngine(path))
        {
            rw.RequireOpen();
            var bytes = File.ReadAllBytes(path);
            Assert.That(bytes.AsSpan(bytes.Length - 512).ContainsAnyExcept((byte)0xC7), Is.False, "0xC7 marker while open");
        }
        Assert.That(VhdChecker.Check(path).Problems, Is.Empty);
    }

    [Test]
    public void A_corrupt_image_gets_a_clear_open_error()
    {
        using var dir = new TempDir("vhdx");
        string garbage = dir["garbage.vhd"];
        File.WriteAllBytes(garbage, Pattern(1 << 20, 5));
        using (var e = new VhdEngine(garbage))
        {
            Assert.That(e.OpenError, Is.EqualTo(-Errno.EINVAL));
            Assert.That(e.Log, Does.Contain("garbage.vhd").And.Contain("cookie"));
        }

        string badHeader = Dynamic(dir, "badheader.vhd", 8);
        using (var f = File.OpenHandle(badHeader, FileMode.Open, FileAccess.ReadWrite))
            RandomAccess.Write(f, new byte[] { 0xAB }, 512 + 30); // block size: header checksum breaks
        using (var e = new VhdEngine(badHeader))
        {
            Assert.That(e.OpenError, Is.LessThan(0));
            Assert.That(e.Log, Does.Contain("badheader.vhd").And.Contain("header"));
        }

        string tiny = dir["tiny.vhd"];
        File.WriteAllBytes(tiny, new byte[100]);
        using (var e = new VhdEngine(tiny)) Assert.That(e.OpenError, Is.LessThan(0));

        using (var e = new VhdEngine(dir["missing.vhd"]))
        {
            Assert.That(e.OpenError, Is.EqualTo(-Errno.ENOENT));
            Assert.That(e.Log, Does.Contain("missing.vhd"));
        }
    }

    [Test]
    public void A_parent_with_another_uuid_or_a_missing_parent_is_refused_naming_both()
    {
        using var dir = new TempDir("vhdu");
        var (leaf, _) = ThreeDeepChain(dir);
        // Replace mid.vhd by another image: same place, different identity.
        File.Move(dir["mid.vhd"], dir["mid.orig"]);
        Snapshot(dir, "mid.vhd", dir["base.vhd"]);
        using (var e = new VhdEngine(leaf))
        {
            Assert.That(e.OpenError, Is.EqualTo(-Errno.EINVAL));
            Assert.That(e.Log, Does.Contain("records parent").And.Contain("mid.vhd"));
        }
        File.Delete(dir["mid.vhd"]);
        using (var e = new VhdEngine(leaf))
        {
            Assert.That(e.OpenError, Is.EqualTo(-Errno.ENOENT));
            Assert.That(e.Log, Does.Contain("parent locator"));
        }
        File.Move(dir["mid.orig"], dir["mid.vhd"]);
        Assert.That(VhdChecker.Check(leaf).Problems, Is.Empty, "a refused open leaves the leaf as it was");
    }

    [Test]
    public void A_raw_parent_is_read_through_the_aio_driver()
    {
        using var dir = new TempDir("vhdr");
        var model = Pattern(8 << 20, 4);
        File.WriteAllBytes(dir["base.raw"], model);
        string leaf = Snapshot(dir, "leaf.vhd", dir["base.raw"], rawParent: true);
        using var e = new VhdEngine(leaf);
        e.RequireOpen();
        Assert.That(e.Vbd.Chain!.Images[1].Type, Is.EqualTo(DriverType.Aio));
        RandomTraffic(e, model, 10, 5);
        Assert.That(e.Read(0, 16384), Is.EqualTo(model));
    }

    private static string Hash(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));
}
