using System.Buffers.Binary;
using BlkTapCtrl.Testing;
using BlkTapCtrl.Vhd.Format;
using BlkTapCtrl.Vhd.Image;
using BlkTapCtrl.Vhd.Operations;

namespace BlkTapCtrl.Vhd.Tests.Image;

/// <summary>Bad input gets a clear error naming field and value, and loses nothing.</summary>
public class BadInputTests
{
    private static void Poke(string path, long offset, ReadOnlySpan<byte> bytes)
    {
        using var fs = new FileStream(path, FileMode.Open);
        fs.Position = offset;
        fs.Write(bytes);
    }

    private static void SetBat(string path, int entry, uint value)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, value);
        Poke(path, 1536 + entry * 4, b);
    }

    private static string Dynamic(TempDir d, string name, int mb = 8, int writeMb = 4)
    {
        VhdCreator.Create(d[name], new VhdCreateOptions { SizeBytes = (ulong)mb << 20 });
        if (writeMb > 0)
        {
            var data = new byte[writeMb << 20];
            for (int k = 0; k < data.Length; k++)
                data[k] = (byte)(k * 7); // a plain loop: LINQ over megabytes cost seconds on a loaded machine
            using var i = VhdImage.Open(d[name]);
            i.Write(0, data);
        }
        return d[name];
    }

    [Test]
    public void Bad_cookies_on_both_footers_name_the_cookie()
    {
        using var d = new TempDir();
        var p = Dynamic(d, "a.vhd", writeMb: 0);
        Poke(p, 0, "garbage!"u8);
        Poke(p, new FileInfo(p).Length - 512, "garbage!"u8);
        var e = Assert.Throws<VhdFormatException>(() => VhdImage.Open(p, VhdOpenFlags.ReadOnly))!;
        Assert.That((e.Field, e.Value), Is.EqualTo(("footer cookie", "garbage!")));
    }

    [Test]
    public void Truncated_file_is_refused_naming_the_bat_entry()
    {
        using var d = new TempDir();
        var p = Dynamic(d, "a.vhd");
        using (var fs = new FileStream(p, FileMode.Open)) fs.SetLength(fs.Length - (1 << 20));
        var e = Assert.Throws<VhdFormatException>(() => VhdImage.Open(p, VhdOpenFlags.ReadOnly))!;
        Assert.That(e.Field, Is.EqualTo("BAT entry 1"));
        Assert.That(e.Message, Does.Contain("beyond the file"));
    }

    [Test]
    public void Bat_entries_into_metadata_or_into_each_other_are_refused()
    {
        using var d = new TempDir();
        var p = Dynamic(d, "a.vhd");
        SetBat(p, 1, 2);
        var e = Assert.Throws<VhdFormatException>(() => VhdImage.Open(p, VhdOpenFlags.ReadOnly))!;
        Assert.That((e.Field, e.Value), Is.EqualTo(("BAT entry 1", "0x00000002")));
        Assert.That(e.Message, Does.Contain("overlaps the metadata"));
        SetBat(p, 1, 7 + 100);
        e = Assert.Throws<VhdFormatException>(() => VhdImage.Open(p, VhdOpenFlags.ReadOnly))!;
        Assert.That(e.Message, Does.Contain("overlaps block 0"));
    }

    [Test]
    public void A_parent_whose_uuid_does_not_match_is_refused()
    {
        using var d = new TempDir();
        Dynamic(d, "p.vhd", writeMb: 0);
        VhdCreator.Create(d["c.vhd"], new VhdCreateOptions { Type = DiskType.Differencing, ParentPath = d["p.vhd"] });
        File.Delete(d["p.vhd"]);
        Dynamic(d, "p.vhd", writeMb: 0); // same name, new uuid
        var e = Assert.Throws<VhdFormatException>(() => VhdChain.Open(d["c.vhd"], VhdOpenFlags.ReadOnly))!;
        Assert.That(e.Field, Is.EqualTo("parent uuid"));
    }

    [Test]
    public void Locators_that_point_nowhere_give_ENOENT()
    {
        using var d = new TempDir();
        Dynamic(d, "p.vhd", writeMb: 0);
        VhdCreator.Create(d["c.vhd"], new VhdCreateOptions { Type = DiskType.Differencing, ParentPath = d["p.vhd"] });
        File.Move(d["p.vhd"], d["moved.vhd"]);
        var e = Assert.Throws<VhdFormatException>(() => VhdChain.Open(d["c.vhd"], VhdOpenFlags.ReadOnly))!;
        Assert.That((e.Field, e.Errno), Is.EqualTo(("parent locator", Errnos.ENOENT)));
        Assert.That(e.Value, Is.EqualTo("p.vhd"));
    }

    [Test]
    public void Parent_loops_are_refused_with_ELOOP()
    {
        using var d = new TempDir();
        Dynamic(d, "x.vhd", writeMb: 0);
        VhdCreator.Create(d["a.vhd"], new VhdCreateOptions { Type = DiskType.Differencing, ParentPath = d["x.vhd"] });
        VhdCreator.Create(d["b.vhd"], new VhdCreateOptions { Type = DiskType.Differencing, ParentPath = d["a.vhd"] });
        VhdEditor.ChangeParent(d["a.vhd"], d["b.vhd"], parentIsRaw: false); // a -> b -> a
        var e = Assert.Throws<VhdFormatException>(() => VhdChain.Open(d["b.vhd"], VhdOpenFlags.ReadOnly))!;
        Assert.That(e.Errno, Is.EqualTo(Errnos.ELOOP));
    }

    [Test]
    public void Over_deep_chains_are_refused()
    {
        using var d = new TempDir();
        Dynamic(d, "0.vhd", writeMb: 0);
        for (int i = 1; i <= 5; i++)
            VhdCreator.Create(d[$"{i}.vhd"], new VhdCreateOptions { Type = DiskType.Differencing, ParentPath = d[$"{i - 1}.vhd"] });
        Assert.That(VhdChain.Open(d["5.vhd"], VhdOpenFlags.ReadOnly, maxDepth: 6).Depth, Is.EqualTo(6));
        var e = Assert.Throws<VhdFormatException>(() => VhdChain.Open(d["5.vhd"], VhdOpenFlags.ReadOnly, maxDepth: 4))!;
        Assert.That((e.Field, e.Value), Is.EqualTo(("chain depth", "5")));
    }

    [Test]
    public void Sizes_that_overflow_are_refused()
    {
        var f = new VhdFooter { DataOffset = 512, CurrentSize = ulong.MaxValue - 511, Type = DiskType.Dynamic };
        var e = Assert.Throws<VhdFormatException>(() => VhdFooter.Parse(f.ToBytes()).Validate())!;
        Assert.That(e.Field, Is.EqualTo("footer current size"));
        var h = new DynamicHeader { TableOffset = 1536, MaxBatSize = 8 };
        e = Assert.Throws<VhdFormatException>(() => DynamicHeader.Parse(h.ToBytes()).Validate(1UL << 40))!;
        Assert.That(e.Field, Is.EqualTo("header max BAT size"));
        using var d = new TempDir();
        Assert.Throws<VhdFormatException>(() => VhdCreator.Create(d["huge.vhd"], new VhdCreateOptions { SizeBytes = 1UL << 62 }));
        Assert.That(File.Exists(d["huge.vhd"]), Is.False, "a failed create leaves no file");
    }

    // §6 geometry overflow: a 2 TiB (and a 3 TiB) disk gets a valid, capped geometry and checks valid.
    [TestCase(2048)]
    [TestCase(3072)]
    public void Disks_of_2TiB_and_more_have_a_valid_geometry_section6(int gib)
    {
        using var d = new TempDir();
        VhdCreator.Create(d["big.vhd"], new VhdCreateOptions { SizeBytes = (ulong)gib << 30 });
        using var image = VhdImage.Open(d["big.vhd"]);
        Assert.That(image.Footer.Geometry, Is.EqualTo((65535u << 16) | (16u << 8) | 255u));
        image.Write(image.VirtualSectors - 8, new byte[4096]);
        Assert.That(VhdChecker.Check(d["big.vhd"]).Problems, Is.Empty);
    }

    [Test]
    public void Writes_to_a_read_only_image_are_refused()
    {
        using var d = new TempDir();
        var p = Dynamic(d, "a.vhd", writeMb: 0);
        using var image = VhdImage.Open(p, VhdOpenFlags.ReadOnly);
        var e = Assert.Throws<VhdFormatException>(() => image.Write(0, new byte[512]))!;
        Assert.That(e.Errno, Is.EqualTo(Errnos.EPERM));
        Assert.Throws<VhdFormatException>(() => image.BeginAllocation(0));
    }

    // CA-29010: a strict open must not be refused because the primary footer holds tapdisk's 0xC7
    // "opened" marker: the backup footer is used, I/O works, and closing restores the footer.
    [Test]
    public void CA_29010_open_falls_back_to_the_backup_footer_and_close_restores_it()
    {
        using var d = new TempDir();
        var p = Dynamic(d, "a.vhd", writeMb: 2);
        var good = File.ReadAllBytes(p);
        using (var image = VhdImage.Open(p)) image.WriteOpenedMarker();
        Assert.That(File.ReadAllBytes(p).AsSpan(good.Length - 512).ContainsAnyExcept((byte)0xC7), Is.False);
        using (var image = VhdImage.Open(p))
        {
            Assert.That(image.OpenedFromBackupFooter, Is.True);
            Assert.That(image.PrimaryFooterIsOpenedMarker, Is.True);
            Assert.That(image.PrimaryFooterError!.Field, Is.EqualTo("footer cookie"));
            var buf = new byte[4096];
            image.Read(0, buf);
            Assert.That(buf[1], Is.EqualTo(7));
            image.FlushMetadata();
        }
        AssertBytes.Equal(good, File.ReadAllBytes(p), "the file after close");
    }

    [Test]
    public void Torn_primary_footer_opens_from_backup()
    {
        using var d = new TempDir();
        var p = Dynamic(d, "a.vhd", writeMb: 0);
        Poke(p, new FileInfo(p).Length - 512 + 40, new byte[100]); // half-written footer (sizes, uuid zero): checksum fails
        using var image = VhdImage.Open(p, VhdOpenFlags.ReadOnly);
        Assert.That(image.OpenedFromBackupFooter, Is.True);
        Assert.That(image.PrimaryFooterError!.Field, Is.EqualTo("footer checksum"));
    }
}
