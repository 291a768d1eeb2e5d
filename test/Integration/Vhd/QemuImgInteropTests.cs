using System.Security.Cryptography;
using BlkTapCtrl.Testing;
using BlkTapCtrl.Vhd.Format;
using BlkTapCtrl.Vhd.Image;
using BlkTapCtrl.Vhd.Operations;
using static BlkTapCtrl.Integration.Tests.Vhd.VhdTestFiles;

namespace BlkTapCtrl.Integration.Tests.Vhd;

/// <summary>qemu-img (format vpc) reads what we write, and we read what it writes, byte-exact against raw models.</summary>
public class QemuImgInteropTests
{
    [SetUp]
    public void Tools() => RequireTool("qemu-img");

    private static byte[] RawModel(int bytes, int seed, int holes)
    {
        var model = new byte[bytes];
        var rnd = new Random(seed);
        rnd.NextBytes(model);
        // Leave unwritten holes (zero) of various sizes, some crossing 2 MiB block boundaries.
        for (int i = 0; i < holes; i++)
        {
            int start = rnd.Next(bytes / 512) * 512, len = Math.Min(rnd.Next(1, 3000) * 512, bytes - start);
            Array.Clear(model, start, len);
        }
        return model;
    }

    private static void WriteNonZeroRuns(VhdImage image, byte[] model)
    {
        for (int s = 0; s < model.Length / 512;)
        {
            if (!model.AsSpan(s * 512, 512).ContainsAnyExcept((byte)0)) { s++; continue; }
            int e = s;
            while (e < model.Length / 512 && e - s < 8192 && model.AsSpan(e * 512, 512).ContainsAnyExcept((byte)0)) e++;
            image.Write(s, model.AsSpan(s * 512, (e - s) * 512));
            s = e;
        }
    }

    [TestCase(DiskType.Dynamic)]
    [TestCase(DiskType.Fixed)]
    public async Task Qemu_reads_our_disks_byte_exact(DiskType type)
    {
        using var d = new TempDir("qi");
        var model = RawModel(12 << 20, 11, 6);
        VhdCreator.Create(d["ours.vhd"], new VhdCreateOptions { SizeBytes = (ulong)model.Length, Type = type });
        using (var image = VhdImage.Open(d["ours.vhd"])) WriteNonZeroRuns(image, model);
        File.WriteAllBytes(d["model.raw"], model);

        var convert = await Run("qemu-img", d.Path, "convert", "-f", "vpc", "-O", "raw", "ours.vhd", "out.raw");
        Assert.That(convert.Code, Is.EqualTo(0), convert.Err);
        AssertBytes.Equal(model, File.ReadAllBytes(d["out.raw"]), "qemu-img's raw output");
        var compare = await Run("qemu-img", d.Path, "compare", "-f", "vpc", "-F", "raw", "ours.vhd", "model.raw");
        Assert.That(compare.Code, Is.EqualTo(0), compare.Out + compare.Err);
        var info = await Run("qemu-img", d.Path, "info", "-f", "vpc", "ours.vhd");
        Assert.That(info.Out, Does.Contain($"virtual size: 12 MiB ({model.Length} bytes)"));
    }

    [TestCase("dynamic")]
    [TestCase("fixed")]
    public async Task We_read_qemu_made_disks_including_geometry_rounded_sizes(string subformat)
    {
        using var d = new TempDir("qi");
        var create = await Run("qemu-img", d.Path, "create", "-f", "vpc", "-o", $"subformat={subformat}", "q.vhd", "1G");
        Assert.That(create.Code, Is.EqualTo(0), create.Err);
        // qemu writes 3 MiB of 0xab at 1 MiB (allocating blocks its way: 512-byte aligned, whole bitmap set).
        var write = await Run("qemu-io", d.Path, "-f", "vpc", "-c", "write -P 0xab 1M 3M", "q.vhd");
        Assert.That(write.Code, Is.EqualTo(0), write.Out + write.Err);
        using var image = VhdImage.Open(d["q.vhd"], VhdOpenFlags.ReadOnly);
        Assert.That(image.Footer.CreatorApplication, Is.EqualTo("qemu"u8.ToArray()));
        Assert.That(image.Footer.CurrentSize, Is.EqualTo(1073995776UL), "qemu rounds 1G to its CHS geometry");
        Assert.That(image.IsDynamic, Is.EqualTo(subformat == "dynamic"));
        Assert.That(image.HasBatmap, Is.False);
        var buf = new byte[1 << 20];
        image.Read(image.VirtualSectors - 2048, buf);
        Assert.That(buf, Is.All.EqualTo(0));
        var data = new byte[5 << 20];
        image.Read(0, data);
        Assert.That(data.AsSpan(0, 1 << 20).ContainsAnyExcept((byte)0), Is.False);
        Assert.That(data.AsSpan(1 << 20, 3 << 20).ContainsAnyExcept((byte)0xab), Is.False);
        Assert.That(data.AsSpan(4 << 20).ContainsAnyExcept((byte)0), Is.False);
        Assert.That(VhdChecker.Check(d["q.vhd"]).Problems, Is.Empty);
    }

    [Test]
    public async Task We_read_qemu_convert_output_with_512_byte_aligned_blocks()
    {
        using var d = new TempDir("qi");
        var model = RawModel(10 << 20, 13, 5);
        File.WriteAllBytes(d["m.raw"], model);
        var convert = await Run("qemu-img", d.Path, "convert", "-f", "raw", "-O", "vpc", "-o", "force_size=on", "m.raw", "q.vhd");
        Assert.That(convert.Code, Is.EqualTo(0), convert.Err);
        using var image = VhdImage.Open(d["q.vhd"], VhdOpenFlags.ReadOnly);
        Assert.That(image.Footer.CurrentSize, Is.EqualTo((ulong)model.Length));
        Assert.That(image.Bat.Where(e => e != BlockAllocationTable.Unused).Any(e => (e + 1) % 8 != 0), Is.True,
            "qemu places blocks 512-byte aligned, not 4 KiB aligned like blktap");
        var back = new byte[model.Length];
        image.Read(0, back);
        Assert.That(SHA256.HashData(back), Is.EqualTo(SHA256.HashData(model)));
    }

    [Test]
    public async Task Qemu_reads_our_raw_to_vhd_copy_of_a_golden_chain()
    {
        using var d = new TempDir("qi");
        Unpack(d);
        var content = new byte[16 << 20];
        using (var chain = VhdChain.Open(d["leaf.vhd"], VhdOpenFlags.ReadOnly)) chain.Read(0, content);
        VhdCreator.Create(d["flat.vhd"], new VhdCreateOptions { SizeBytes = (ulong)content.Length });
        using (var flat = VhdImage.Open(d["flat.vhd"])) WriteNonZeroRuns(flat, content);
        var convert = await Run("qemu-img", d.Path, "convert", "-f", "vpc", "-O", "raw", "flat.vhd", "flat.raw");
        Assert.That(convert.Code, Is.EqualTo(0), convert.Err);
        Assert.That(Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(d["flat.raw"]))),
            Is.EqualTo("bfc97214a5d56c27b7cf1bd7de3b828c4a701f9d04a47a399d6b0693325b5151"));
    }
}
