using System.Buffers.Binary;
using BlkTapCtrl.Vhd.Format;

namespace BlkTapCtrl.Vhd.Tests.Format;

public class FormatTypeTests
{
    [TestCase(16UL << 20, 481u, 4u, 17u)]
    [TestCase(4UL << 20, 120u, 4u, 17u)]
    [TestCase(8UL << 20, 240u, 4u, 17u)]
    public void Geometry_matches_blktap_for_small_disks(ulong size, uint c, uint h, uint s)
    {
        var g = Geometry.FromSize(size);
        Assert.That((Geometry.Cylinders(g), Geometry.Heads(g), Geometry.SectorsPerTrack(g)), Is.EqualTo((c, h, s)));
    }

    // §6 item "geometry overflow": blktap computed the sector count in 32 bits and produced a tiny
    // geometry for disks of 2 TiB and more. The count is 64-bit here and capped at 65535/16/255.
    [TestCase(2UL << 40)]
    [TestCase(4UL << 40)]
    [TestCase((2UL << 40) + (2UL << 20))]
    public void Geometry_does_not_overflow_at_2TiB_and_more_section6(ulong size)
    {
        var g = Geometry.FromSize(size);
        Assert.That((Geometry.Cylinders(g), Geometry.Heads(g), Geometry.SectorsPerTrack(g)), Is.EqualTo((65535u, 16u, 255u)));
    }

    [Test]
    public void Geometry_just_below_the_cap_uses_255_sectors_per_track()
    {
        var g = Geometry.FromSize(65535UL * 16 * 63 * 512);
        Assert.That(Geometry.SectorsPerTrack(g), Is.EqualTo(255u));
    }

    // §6 item 7: the original counted from 2000-01-01 in local time; we use UTC regardless of TZ.
    [Test]
    public void Timestamps_are_seconds_since_2000_utc_section6()
    {
        Assert.That(VhdTimestamp.FromDateTime(new DateTime(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc)), Is.EqualTo(0u));
        Assert.That(VhdTimestamp.FromDateTime(new DateTime(2026, 11, 24, 17, 21, 54, DateTimeKind.Utc)), Is.EqualTo(0x32988432u));
        var local = new DateTime(2026, 11, 24, 17, 21, 54, DateTimeKind.Utc).ToLocalTime();
        Assert.That(VhdTimestamp.FromDateTime(local), Is.EqualTo(0x32988432u));
        Assert.That(VhdTimestamp.ToCTimeString(0), Is.EqualTo("Sat Jan  1 00:00:00 2000"));
        Assert.That(VhdTimestamp.ToCTimeString(0x32988432), Is.EqualTo("Tue Nov 24 17:21:54 2026"));
    }

    [Test]
    public void Footer_round_trips_and_checksum_is_inverted_byte_sum()
    {
        var f = new VhdFooter { DataOffset = 512, CurrentSize = 1 << 24, OriginalSize = 1 << 24, Type = DiskType.Dynamic, Uuid = Guid.NewGuid(), Timestamp = 5, Geometry = Geometry.FromSize(1 << 24) };
        var b = f.ToBytes();
        uint sum = 0;
        for (int i = 0; i < 512; i++) if (i < 64 || i >= 68) sum += b[i];
        Assert.That(BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(64)), Is.EqualTo(~sum));
        var back = VhdFooter.Parse(b);
        Assert.That(back.ToBytes(keepChecksum: true), Is.EqualTo(b));
        Assert.That(back.Uuid, Is.EqualTo(f.Uuid));
        Assert.DoesNotThrow(() => back.Validate());
    }

    [Test]
    public void Footer_rejections_name_field_and_value()
    {
        var f = new VhdFooter { DataOffset = 512, CurrentSize = 1 << 24, Type = DiskType.Dynamic };
        var b = f.ToBytes();
        b[0] = (byte)'X';
        var e = Assert.Throws<VhdFormatException>(() => VhdFooter.Parse(b).Validate())!;
        Assert.That(e.Field, Is.EqualTo("footer cookie"));
        Assert.That(e.Value, Is.EqualTo("Xonectix"));
        b = f.ToBytes();
        b[100] ^= 1;
        e = Assert.Throws<VhdFormatException>(() => VhdFooter.Parse(b).Validate())!;
        Assert.That(e.Field, Is.EqualTo("footer checksum"));
        Assert.That(e.Message, Does.Contain("computed 0x"));
    }

    [Test]
    public void Footer_problems_lists_every_broken_rule()
    {
        var f = new VhdFooter { DataOffset = 512, CurrentSize = 1 << 24, Type = DiskType.Dynamic, Hidden = 7, Saved = 3, Features = 0 };
        f.Checksum = f.ComputeChecksum();
        var problems = f.Problems(now: 100).Select(p => p.Problem).ToList();
        Assert.That(problems, Is.EquivalentTo(new[] { "invalid 'reserved' feature", "invalid 'saved' state", "invalid 'hidden' state" }));
    }

    [Test]
    public void Locators_encode_as_blktap_does()
    {
        Assert.That(ParentLocator.Encode(PlatformCode.Macx, "./base.vhd"), Is.EqualTo("file://./base.vhd"u8.ToArray()));
        var w = ParentLocator.Encode(PlatformCode.W2ku, "./base.vhd");
        Assert.That(w, Is.EqualTo(System.Text.Encoding.Unicode.GetBytes(".\\base.vhd")));
        Assert.That(ParentLocator.Decode(PlatformCode.W2ru, System.Text.Encoding.Unicode.GetBytes("C:.\\x\\p.vhd")), Is.EqualTo("./x/p.vhd"));
        Assert.That(ParentLocator.Decode(PlatformCode.Macx, "file://../p.vhd"u8), Is.EqualTo("../p.vhd"));
        Assert.That(ParentLocator.Encode(PlatformCode.W2ru, "../a/p.vhd"), Is.EqualTo(System.Text.Encoding.Unicode.GetBytes(".\\..\\a\\p.vhd")));
    }

    [Test]
    public void Locator_data_space_below_512_counts_sectors_multiples_count_bytes()
    {
        Assert.That(new ParentLocator { DataSpace = 1 }.SpaceBytes, Is.EqualTo(512));
        Assert.That(new ParentLocator { DataSpace = 1024 }.SpaceBytes, Is.EqualTo(1024));
        Assert.That(new ParentLocator { DataSpace = 700 }.SpaceBytes, Is.EqualTo(-1));
    }

    [Test]
    public void Relative_parent_paths_use_dot_and_dotdot()
    {
        using var dir = new BlkTapCtrl.Testing.TempDir();
        Directory.CreateDirectory(dir["a/b"]);
        Directory.CreateDirectory(dir["a/c"]);
        File.WriteAllText(dir["a/b/p.vhd"], "");
        File.WriteAllText(dir["a/c/q.vhd"], "");
        Assert.That(ParentPath.Relative(dir["a/b/child.vhd"], dir["a/b/p.vhd"]), Is.EqualTo("./p.vhd"));
        Assert.That(ParentPath.Relative(dir["a/b/child.vhd"], dir["a/c/q.vhd"]), Is.EqualTo("../c/q.vhd"));
        Assert.That(ParentPath.Resolve(dir["a/b/child.vhd"], "../c/q.vhd"), Is.EqualTo(ParentPath.Canonical(dir["a/c/q.vhd"])));
        Assert.That(ParentPath.Resolve(dir["a/b/child.vhd"], "./missing.vhd"), Is.Null);
    }

    [Test]
    public void Bitmap_runs_and_ranges()
    {
        var map = new byte[512];
        SectorBitmap.SetRange(map, 3, 20);
        Assert.That(SectorBitmap.RunLength(map, 0, 100), Is.EqualTo(3));
        Assert.That(SectorBitmap.RunLength(map, 3, 100), Is.EqualTo(20));
        Assert.That(SectorBitmap.RunLength(map, 23, 4000), Is.EqualTo(4000));
        Assert.That(map[0], Is.EqualTo(0x1f));
        Assert.That(SectorBitmap.PopCount(map, 4096), Is.EqualTo(20));
        SectorBitmap.SetRange(map, 0, 4096);
        Assert.That(SectorBitmap.AllSet(map, 4096), Is.True);
    }

    [Test]
    public void Batmap_sizes_and_place()
    {
        Assert.That(BatmapHeader.SectorsFor(8), Is.EqualTo(1u));
        Assert.That(BatmapHeader.SectorsFor(512 * 8 + 1), Is.EqualTo(2u));
        Assert.That(BatmapHeader.HeaderOffsetFor(1536, 8), Is.EqualTo(2048UL));
        Assert.That(BatmapHeader.HeaderOffsetFor(1536, 129), Is.EqualTo(2560UL));
    }
}
