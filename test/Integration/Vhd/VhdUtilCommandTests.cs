using BlkTapCtrl.Testing;
using BlkTapCtrl.Vhd.Format;
using BlkTapCtrl.Vhd.Image;
using static BlkTapCtrl.Integration.Tests.Vhd.VhdTestFiles;

namespace BlkTapCtrl.Integration.Tests.Vhd;

/// <summary>Every vhd-util command run as a process on real files.</summary>
public class VhdUtilCommandTests
{
    [Test]
    public async Task Create_snapshot_query_check_scan()
    {
        using var d = new TempDir("vu");
        Assert.That((await VhdUtil(d.Path, "create", "-n", "a.vhd", "-s", "20")).Code, Is.EqualTo(0));
        Assert.That((await VhdUtil(d.Path, "query", "-n", "a.vhd", "-v")).Out, Is.EqualTo("20\n"));
        Assert.That((await VhdUtil(d.Path, "snapshot", "-n", "b.vhd", "-p", "a.vhd")).Code, Is.EqualTo(0));
        var check = await VhdUtil(d.Path, "check", "-n", "b.vhd", "-p");
        Assert.That(check.Out, Is.EqualTo("b.vhd is valid\n" + Canonical(d["a.vhd"]) + " is valid\n"));
        Assert.That((await VhdUtil(d.Path, "query", "-n", "b.vhd", "-d")).Out, Is.EqualTo("chain depth: 2\n"));
        var scan = await VhdUtil(d.Path, "scan", "-f", "-m", "*.vhd");
        Assert.That(scan.Out, Is.EqualTo(
            "vhd=a.vhd capacity=20971520 size=3584 hidden=0 parent=none\n" +
            "vhd=b.vhd capacity=20971520 size=5120 hidden=0 parent=a.vhd\n"));
        var scan2 = await VhdUtil(d.Path, "scan", "b.vhd", "nothere.vhd", "-c");
        Assert.That(scan2.Out, Does.Contain("vhd=b.vhd capacity=20971520 size=5120 hidden=0 parent=./a.vhd\n"));
        Assert.That(scan2.Out, Does.Contain("vhd=nothere.vhd scan-error=-2 error-message='opening file'"));
    }

    [Test]
    public async Task Snapshot_skips_empty_differencing_parents_and_honours_the_depth_limit()
    {
        using var d = new TempDir("vu");
        await VhdUtil(d.Path, "create", "-n", "a.vhd", "-s", "8");
        await VhdUtil(d.Path, "snapshot", "-n", "b.vhd", "-p", "a.vhd");
        Assert.That((await VhdUtil(d.Path, "snapshot", "-n", "c.vhd", "-p", "b.vhd")).Code, Is.EqualTo(0));
        using (var c = VhdImage.Open(d["c.vhd"], VhdOpenFlags.ReadOnly))
            Assert.That(c.Header!.ParentName, Is.EqualTo("a.vhd"), "b.vhd is empty, so c is a snapshot of a");
        Assert.That((await VhdUtil(d.Path, "snapshot", "-n", "d.vhd", "-p", "b.vhd", "-m")).Code, Is.EqualTo(0));
        using (var c = VhdImage.Open(d["d.vhd"], VhdOpenFlags.ReadOnly))
            Assert.That(c.HasRawParent, Is.True, "-m: the parent is taken as a raw file");
        var limited = await VhdUtil(d.Path, "snapshot", "-n", "e.vhd", "-p", "a.vhd", "-l", "1");
        Assert.That(limited.Code, Is.EqualTo(28));
        Assert.That(limited.Out, Is.EqualTo("snapshot depth exceeded: current depth: 1, limit: 1\n"));
        Assert.That(File.Exists(d["e.vhd"]), Is.False);
    }

    [Test]
    public async Task Bad_options_print_usage_and_exit_EINVAL()
    {
        using var d = new TempDir("vu");
        var r = await VhdUtil(d.Path, "create", "-n", "x.vhd");
        Assert.That(r.Code, Is.EqualTo(22));
        Assert.That(r.Out, Does.StartWith("options: <-n name> <-s size (MB)>"));
        var q = await VhdUtil(d.Path, "query", "-n", "missing.vhd", "-v");
        Assert.That(q.Code, Is.EqualTo(2));
        Assert.That(q.Out, Is.EqualTo("error opening missing.vhd: -2\n"));
        Assert.That(q.Err, Does.Contain("no such file"));
    }

    [Test]
    public async Task Set_hidden_and_query_fields()
    {
        using var d = new TempDir("vu");
        await VhdUtil(d.Path, "create", "-n", "a.vhd", "-s", "4");
        Assert.That((await VhdUtil(d.Path, "set", "-n", "a.vhd", "-f", "hidden", "-v", "1")).Code, Is.EqualTo(0));
        Assert.That((await VhdUtil(d.Path, "query", "-n", "a.vhd", "-f")).Out, Is.EqualTo("hidden: 1\n"));
        Assert.That((await VhdUtil(d.Path, "check", "-n", "a.vhd")).Out, Is.EqualTo("a.vhd is valid\n"));
        var bad = await VhdUtil(d.Path, "set", "-n", "a.vhd", "-f", "colour", "-v", "1");
        Assert.That((bad.Code, bad.Out.Split('\n')[0]), Is.EqualTo((22, "invalid field colour")));
    }

    [Test]
    public async Task Check_reports_every_problem_then_dumps_metadata()
    {
        using var d = new TempDir("vu");
        await VhdUtil(d.Path, "create", "-n", "a.vhd", "-s", "8");
        using (var image = VhdImage.Open(d["a.vhd"]))
            image.Write(0, TestBytes.Pattern(4096 * 512 * 2, 1));
        // Point block 1 into block 0 and set a reserved header byte: two independent problems.
        using (var fs = new FileStream(d["a.vhd"], FileMode.Open))
        {
            var bat = new byte[8];
            fs.Position = 1536; fs.ReadExactly(bat);
            uint b0 = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(bat);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(bat.AsSpan(4), b0 + 8);
            fs.Position = 1536; fs.Write(bat);
        }
        var r = await VhdUtil(d.Path, "check", "-n", "a.vhd");
        Assert.That(r.Code, Is.EqualTo(22));
        var lines = r.Out.Split('\n');
        Assert.That(lines, Does.Contain("block 1 (offset 0xf) clobbers block 0 (offset 0x7)"));
        Assert.That(lines, Does.Contain("a.vhd appears invalid; dumping metadata"));
        Assert.That(r.Out, Does.Contain("VHD Footer Summary:"));
    }

    [Test]
    public async Task Coalesce_copies_the_child_into_its_parent()
    {
        using var d = new TempDir("vu");
        await VhdUtil(d.Path, "create", "-n", "a.vhd", "-s", "8");
        var baseData = TestBytes.Pattern(3 << 20, 2);
        using (var a = VhdImage.Open(d["a.vhd"])) a.Write(0, baseData);
        await VhdUtil(d.Path, "snapshot", "-n", "b.vhd", "-p", "a.vhd");
        var top = TestBytes.Pattern(5000 * 512, 3);
        using (var b = VhdChain.Open(d["b.vhd"])) b.Write(1000, top);
        byte[] expected = new byte[8 << 20];
        using (var b = VhdChain.Open(d["b.vhd"], VhdOpenFlags.ReadOnly)) b.Read(0, expected);
        Assert.That((await VhdUtil(d.Path, "coalesce", "-n", "b.vhd")).Code, Is.EqualTo(0));
        var actual = new byte[8 << 20];
        using (var a = VhdChain.Open(d["a.vhd"], VhdOpenFlags.ReadOnly)) a.Read(0, actual);
        Assert.That(actual.AsSpan().SequenceEqual(expected), Is.True);
        Assert.That((await VhdUtil(d.Path, "check", "-n", "a.vhd")).Out, Is.EqualTo("a.vhd is valid\n"));
        var nondiff = await VhdUtil(d.Path, "coalesce", "-n", "a.vhd");
        Assert.That((nondiff.Code, nondiff.Out), Is.EqualTo((22, "coalescing of non-differencing disks is not supported\n")));
    }

    [Test]
    public async Task Fill_allocates_every_block_with_the_chain_content()
    {
        using var d = new TempDir("vu");
        await VhdUtil(d.Path, "create", "-n", "a.vhd", "-s", "6");
        var data = TestBytes.Pattern(1 << 20, 4);
        using (var a = VhdImage.Open(d["a.vhd"])) a.Write(2048, data);
        await VhdUtil(d.Path, "snapshot", "-n", "b.vhd", "-p", "a.vhd");
        Assert.That((await VhdUtil(d.Path, "fill", "-n", "b.vhd")).Code, Is.EqualTo(0));
        using var b = VhdImage.Open(d["b.vhd"], VhdOpenFlags.ReadOnly);
        Assert.That(Enumerable.Range(0, 3).All(i => b.IsBlockFull((uint)i)), Is.True);
        var back = new byte[1 << 20];
        b.Read(2048, back);
        AssertBytes.Equal(data, back, "data read back");
    }

    [Test]
    public async Task Resize_fast_within_preallocation_and_journaled_beyond()
    {
        using var d = new TempDir("vu");
        await VhdUtil(d.Path, "create", "-n", "a.vhd", "-s", "8", "-S", "64");
        Assert.That((await VhdUtil(d.Path, "query", "-n", "a.vhd", "-S")).Out, Is.EqualTo("64\n"));
        var data = TestBytes.Pattern(8 << 20, 5);
        using (var a = VhdImage.Open(d["a.vhd"])) a.Write(0, data);
        Assert.That((await VhdUtil(d.Path, "resize", "-n", "a.vhd", "-s", "32", "-f")).Code, Is.EqualTo(0));
        Assert.That((await VhdUtil(d.Path, "query", "-n", "a.vhd", "-v")).Out, Is.EqualTo("32\n"));
        var tooFar = await VhdUtil(d.Path, "resize", "-n", "a.vhd", "-s", "128", "-f");
        Assert.That(tooFar.Code, Is.EqualTo(22));
        Assert.That((await VhdUtil(d.Path, "resize", "-n", "a.vhd", "-s", "600", "-j", "a.journal")).Code, Is.EqualTo(0));
        Assert.That(File.Exists(d["a.journal"]), Is.False);
        Assert.That((await VhdUtil(d.Path, "check", "-n", "a.vhd")).Out, Is.EqualTo("a.vhd is valid\n"));
        using var after = VhdImage.Open(d["a.vhd"], VhdOpenFlags.ReadOnly);
        Assert.That(after.Footer.CurrentSize, Is.EqualTo(600UL << 20));
        var back = new byte[8 << 20];
        after.Read(0, back);
        Assert.That(back.AsSpan().SequenceEqual(data), Is.True);
    }

    [Test]
    public async Task Revert_undoes_an_interrupted_journaled_resize()
    {
        using var d = new TempDir("vu");
        await VhdUtil(d.Path, "create", "-n", "a.vhd", "-s", "8");
        using (var a = VhdImage.Open(d["a.vhd"])) a.Write(0, TestBytes.Pattern(8 << 20, 6));
        var before = File.ReadAllBytes(d["a.vhd"]);
        // Journal as resize would, then damage the file as a crash mid-resize could.
        using (var a = VhdImage.Open(d["a.vhd"], VhdOpenFlags.ReadOnly))
            BlkTapCtrl.Vhd.Operations.VhdJournal.Create(d["a.j"], d["a.vhd"], a.Footer.Uuid, [(0, 1 << 20), (before.Length - 512, 512)]);
        using (var fs = new FileStream(d["a.vhd"], FileMode.Open))
        {
            fs.Position = 512; fs.Write(new byte[4096]);
            fs.SetLength(before.Length + (4 << 20));
        }
        Assert.That((await VhdUtil(d.Path, "check", "-n", "a.vhd")).Code, Is.Not.EqualTo(0));
        Assert.That((await VhdUtil(d.Path, "revert", "-n", "a.vhd", "-j", "a.j")).Code, Is.EqualTo(0));
        AssertBytes.Equal(before, File.ReadAllBytes(d["a.vhd"]), "a.vhd");
        Assert.That(File.Exists(d["a.j"]), Is.False);
    }

    [Test]
    public async Task Modify_moves_the_footer_and_reparents()
    {
        using var d = new TempDir("vu");
        await VhdUtil(d.Path, "create", "-n", "a.vhd", "-s", "4");
        await VhdUtil(d.Path, "create", "-n", "z.vhd", "-s", "4");
        await VhdUtil(d.Path, "snapshot", "-n", "b.vhd", "-p", "a.vhd");
        Assert.That((await VhdUtil(d.Path, "modify", "-n", "b.vhd", "-p", "z.vhd")).Code, Is.EqualTo(0));
        Assert.That((await VhdUtil(d.Path, "query", "-n", "b.vhd", "-p")).Out, Is.EqualTo(Canonical(d["z.vhd"]) + "\n"));
        Assert.That((await VhdUtil(d.Path, "check", "-n", "b.vhd")).Out, Is.EqualTo("b.vhd is valid\n"));
        Assert.That((await VhdUtil(d.Path, "modify", "-n", "b.vhd", "-s", "1048576")).Code, Is.EqualTo(0));
        Assert.That(new FileInfo(d["b.vhd"]).Length, Is.EqualTo(1048576));
        Assert.That((await VhdUtil(d.Path, "check", "-n", "b.vhd")).Out, Is.EqualTo("b.vhd is valid\n"));
        var tooSmall = await VhdUtil(d.Path, "modify", "-n", "b.vhd", "-s", "1024");
        Assert.That(tooSmall.Out, Does.StartWith("failed to set physical size to 1024: -22"));
    }

    // CA-29010: a primary footer overwritten by tapdisk's 0xC7 "opened" marker (or torn) must not
    // make the image unusable: opens fall back to the backup footer and repair restores the primary.
    [Test]
    public async Task CA_29010_repair_restores_a_0xC7_marked_primary_footer_from_the_backup()
    {
        using var d = new TempDir("vu");
        await VhdUtil(d.Path, "create", "-n", "a.vhd", "-s", "8");
        using (var a = VhdImage.Open(d["a.vhd"])) a.Write(10, TestBytes.Pattern(4096, 7));
        var good = File.ReadAllBytes(d["a.vhd"]);
        using (var a = VhdImage.Open(d["a.vhd"])) a.WriteOpenedMarker();
        var marked = await VhdUtil(d.Path, "check", "-n", "a.vhd");
        Assert.That(marked.Out, Does.StartWith("primary footer invalid: invalid cookie\n"));
        Assert.That((await VhdUtil(d.Path, "check", "-n", "a.vhd", "-i")).Out, Is.EqualTo("a.vhd is valid\n"));
        Assert.That((await VhdUtil(d.Path, "query", "-n", "a.vhd", "-v")).Out, Is.EqualTo("8\n"));
        Assert.That((await VhdUtil(d.Path, "repair", "-n", "a.vhd")).Code, Is.EqualTo(0));
        AssertBytes.Equal(good, File.ReadAllBytes(d["a.vhd"]), "a.vhd");
        Assert.That((await VhdUtil(d.Path, "check", "-n", "a.vhd")).Out, Is.EqualTo("a.vhd is valid\n"));
    }

    [Test]
    public async Task Read_translates_sectors_and_dumps_bat_and_data()
    {
        using var d = new TempDir("vu");
        Unpack(d);
        var t = await VhdUtil(d.Path, "read", "-n", "leaf.vhd", "-t", "8191", "-c", "2");
        Assert.That(t.Out, Is.EqualTo(
            "logical sector 8191: block number: 1, sector offset: 4095, file offset: 2104832\n" +
            "logical sector 8192: block number: 2, sector offset: 0, file offset: 2109440\n"));
        var b = await VhdUtil(d.Path, "read", "-n", "leaf.vhd", "-b", "0", "-c", "3", "-x");
        Assert.That(b.Out, Is.EqualTo("block: 0: offset: not allocated\nblock: 0x1: offset: 0x1e00\nblock: 0x2: offset: 0x202e00\n"));
        var i = await VhdUtil(d.Path, "read", "-n", "leaf.vhd", "-i", "8190", "-c", "3");
        Assert.That(i.Out, Is.EqualTo("block 1: sec: 4094: 0\nblock 1: sec: 4095: 1\nblock 2: sec: 0: 1\n"));
    }

    private static string Canonical(string p) => BlkTapCtrl.Vhd.Format.ParentPath.Canonical(p);
}
