using System.Security.Cryptography;
using BlkTapCtrl.Testing;
using BlkTapCtrl.Vhd.Format;
using BlkTapCtrl.Vhd.Image;
using BlkTapCtrl.Vhd.Operations;
using BlkTapCtrl.Vhd.Tests.Support;

namespace BlkTapCtrl.Vhd.Tests.Image;

/// <summary>The images written by blktap's own vhd-util: we read what it wrote and write what it writes.</summary>
public class GoldenImageTests
{
    private TempDir _dir = null!;

    [OneTimeSetUp]
    public void Unpack()
    {
        _dir = new TempDir("vhdgold");
        GoldenImages.Unpack(_dir);
    }

    [OneTimeTearDown]
    public void Clean() => _dir.Dispose();

    [TestCase("empty-16m", DiskType.Dynamic, 16, 8u, "c70867ee-439d-4498-9634-5f42570fe828", 1)]
    [TestCase("fixed-4m", DiskType.Fixed, 4, 0u, "c15689bb-f090-4372-a7aa-022936b9f7e6", 1)]
    [TestCase("prealloc-8m-s64", DiskType.Dynamic, 8, 32u, "32cb7022-f898-46e6-94e5-85b2efc759b3", 1)]
    [TestCase("base", DiskType.Dynamic, 16, 8u, "c21dc78c-f4f1-4a6e-8da7-206fcca3dc95", 1)]
    [TestCase("mid", DiskType.Differencing, 16, 8u, "43ed0357-95aa-451d-830f-ebb2ea311558", 2)]
    [TestCase("leaf", DiskType.Differencing, 16, 8u, "ef7ae336-72e4-4842-a114-168d42231baa", 3)]
    public void Reads_metadata_of_golden_image(string name, DiskType type, int mb, uint maxBat, string uuid, int depth)
    {
        using var chain = VhdChain.Open(_dir[name + ".vhd"], VhdOpenFlags.ReadOnly);
        var f = chain.Leaf.Footer;
        Assert.That(f.Type, Is.EqualTo(type));
        Assert.That(f.CurrentSize >> 20, Is.EqualTo((ulong)mb));
        Assert.That(f.Uuid, Is.EqualTo(Guid.Parse(uuid)));
        Assert.That(f.Timestamp, Is.EqualTo(0x32988432u));
        Assert.That(f.Geometry, Is.EqualTo(Geometry.FromSize(f.CurrentSize)));
        Assert.That(f.ChecksumMatches(), Is.True);
        Assert.That(chain.Depth, Is.EqualTo(depth));
        Assert.That(chain.Leaf.OpenedFromBackupFooter, Is.False);
        if (type != DiskType.Fixed)
        {
            Assert.That(chain.Leaf.Header!.MaxBatSize, Is.EqualTo(maxBat));
            Assert.That(chain.Leaf.HasBatmap, Is.True);
            Assert.That(chain.Leaf.BatmapHeader!.BatmapOffset, Is.EqualTo(2560UL));
        }
    }

    [Test]
    public void Physical_sizes_match_query_s()
    {
        foreach (var (name, size) in new[] { ("empty-16m", 3584L), ("fixed-4m", 4194816L), ("base", 4203008L), ("mid", 2105856L), ("leaf", 4207104L) })
        {
            using var image = VhdImage.Open(_dir[name + ".vhd"], VhdOpenFlags.ReadOnly);
            Assert.That(image.PhysicalSize, Is.EqualTo(size), name);
        }
    }

    [Test]
    public void Differencing_headers_name_their_parents()
    {
        using var chain = VhdChain.Open(_dir["leaf.vhd"], VhdOpenFlags.ReadOnly);
        Assert.That(chain.Leaf.Header!.ParentName, Is.EqualTo("mid.vhd"));
        Assert.That(chain.Images[1].Header!.ParentName, Is.EqualTo("base.vhd"));
        Assert.That(chain.Leaf.Header.ParentUuid, Is.EqualTo(chain.Images[1].Footer.Uuid));
        var locs = chain.Leaf.ReadLocatorPaths();
        Assert.That(locs.Select(l => l.Path), Is.EqualTo(new[] { "./mid.vhd", "./mid.vhd", "./mid.vhd" }));
        Assert.That(chain.Images[2].CanonicalPath, Is.EqualTo(ParentPath.Canonical(_dir["base.vhd"])));
    }

    [TestCase("empty-16m")]
    [TestCase("prealloc-8m-s64")]
    [TestCase("base")]
    [TestCase("mid")]
    [TestCase("leaf")]
    public void Content_through_the_chain_matches_golden_hash(string name)
    {
        using var chain = VhdChain.Open(_dir[name + ".vhd"], VhdOpenFlags.ReadOnly);
        Assert.That(Sha256(chain), Is.EqualTo(GoldenImages.ContentHashes()[name]));
    }

    internal static string Sha256(VhdChain chain)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buf = new byte[1 << 20];
        for (long s = 0; s < chain.VirtualSectors; s += buf.Length / 512)
        {
            int n = (int)Math.Min(buf.Length / 512, chain.VirtualSectors - s);
            chain.Read(s, buf.AsSpan(0, n * 512));
            sha.AppendData(buf, 0, n * 512);
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    [TestCase("empty-16m", DiskType.Dynamic, 16UL, 0UL)]
    [TestCase("prealloc-8m-s64", DiskType.Dynamic, 8UL, 64UL)]
    [TestCase("fixed-4m", DiskType.Fixed, 4UL, 0UL)]
    public void Creating_with_the_same_uuid_and_time_gives_the_identical_file(string name, DiskType type, ulong mb, ulong metaMb)
    {
        using var golden = VhdImage.Open(_dir[name + ".vhd"], VhdOpenFlags.ReadOnly);
        using var mine = new TempDir();
        VhdCreator.Create(mine["x.vhd"], new VhdCreateOptions
        {
            SizeBytes = mb << 20, Type = type, MetadataSizeBytes = metaMb << 20,
            Uuid = golden.Footer.Uuid, Timestamp = golden.Footer.Timestamp,
        });
        AssertBytes.SameFile(_dir[name + ".vhd"], mine["x.vhd"]);
    }

    [Test]
    public void Snapshot_and_libvhd_style_write_reproduce_mid_vhd_byte_for_byte()
    {
        using var mine = new TempDir();
        File.Copy(_dir["base.vhd"], mine["base.vhd"]);
        File.SetLastWriteTimeUtc(mine["base.vhd"], VhdTimestamp.ToDateTime(0x32988432));
        using var goldenMid = VhdChain.Open(_dir["mid.vhd"], VhdOpenFlags.ReadOnly);
        VhdCreator.Create(mine["mid.vhd"], new VhdCreateOptions
        {
            Type = DiskType.Differencing, ParentPath = mine["base.vhd"],
            Uuid = goldenMid.Leaf.Footer.Uuid, Timestamp = goldenMid.Leaf.Footer.Timestamp,
        });
        var data = new byte[1 << 20];
        goldenMid.Leaf.Read(4096, data);
        using (var chain = VhdChain.Open(mine["mid.vhd"]))
            chain.Write(4096, data);
        AssertBytes.SameFile(_dir["mid.vhd"], mine["mid.vhd"]);
    }
}
