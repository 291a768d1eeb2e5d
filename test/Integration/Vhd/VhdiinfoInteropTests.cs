using BlkTapCtrl.Testing;
using BlkTapCtrl.Vhd.Format;
using BlkTapCtrl.Vhd.Operations;
using static BlkTapCtrl.Integration.Tests.Vhd.VhdTestFiles;

namespace BlkTapCtrl.Integration.Tests.Vhd;

/// <summary>libvhdi's vhdiinfo reads our dynamic, fixed and differencing disks.</summary>
public class VhdiinfoInteropTests
{
    [SetUp]
    public void Tools() => RequireTool("vhdiinfo");

    [TestCase(DiskType.Dynamic, "Dynamic")]
    [TestCase(DiskType.Fixed, "Fixed")]
    public async Task Vhdiinfo_reads_our_disks(DiskType type, string expected)
    {
        using var d = new TempDir("vi");
        var uuid = Guid.NewGuid();
        VhdCreator.Create(d["a.vhd"], new VhdCreateOptions { SizeBytes = 8 << 20, Type = type, Uuid = uuid });
        var r = await Run("vhdiinfo", d.Path, "a.vhd");
        Assert.That(r.Code, Is.EqualTo(0), r.Out + r.Err);
        Assert.That(r.Out, Does.Contain($"Disk type\t\t: {expected}"));
        Assert.That(r.Out, Does.Contain("Media size\t\t: 8.0 MiB (8388608 bytes)").Or.Contain("(8388608 bytes)"));
        Assert.That(r.Out, Does.Contain($"Identifier\t\t: {uuid:D}"));
    }

    [Test]
    public async Task Vhdiinfo_reports_the_parent_uuid_and_name_we_wrote()
    {
        using var d = new TempDir("vi");
        VhdCreator.Create(d["parent.vhd"], new VhdCreateOptions { SizeBytes = 8 << 20 });
        var child = Guid.NewGuid();
        VhdCreator.Create(d["child.vhd"], new VhdCreateOptions { Type = DiskType.Differencing, ParentPath = d["parent.vhd"], Uuid = child });
        Guid parentUuid;
        using (var p = BlkTapCtrl.Vhd.Image.VhdImage.Open(d["parent.vhd"], BlkTapCtrl.Vhd.Image.VhdOpenFlags.ReadOnly))
            parentUuid = p.Footer.Uuid;
        var r = await Run("vhdiinfo", d.Path, "child.vhd");
        Assert.That(r.Code, Is.EqualTo(0), r.Out + r.Err);
        Assert.That(r.Out, Does.Contain("Disk type\t\t: Differential"));
        Assert.That(r.Out, Does.Contain($"Identifier\t\t: {child:D}"));
        Assert.That(r.Out, Does.Contain($"Parent identifier\t: {parentUuid:D}"));
        Assert.That(r.Out, Does.Contain("Parent filename\t\t: parent.vhd"));
    }
}
