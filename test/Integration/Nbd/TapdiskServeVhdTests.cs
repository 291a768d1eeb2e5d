using BlkTapCtrl.Testing;
using BlkTapCtrl.Vhd.Format;
using BlkTapCtrl.Vhd.Image;
using BlkTapCtrl.Vhd.Operations;

namespace BlkTapCtrl.Integration.Tests.Nbd;

/// <summary>
/// VHD images served by the real <c>tapdisk serve vhd:…</c> process over NBD and driven by the peers:
/// nbdinfo --map shows the chain's allocation, nbdcopy and qemu-img read what the library reads,
/// writes from nbdcopy and qemu-io land in the leaf; afterwards our vhd-util check passes and qemu's
/// own vpc driver (qemu-img compare) agrees with the data.
/// </summary>
public class TapdiskServeVhdTests
{
    private static readonly TimeSpan ToolTimeout = TimeSpan.FromSeconds(60);

    private static byte[] Pattern(int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    private static async Task<string> Run(string tool, params string[] args)
    {
        var (code, stdout, stderr) = await ChildProcess.RunAsync(tool, args, timeout: ToolTimeout);
        Assert.That(code, Is.Zero, $"{tool} {string.Join(' ', args)} failed ({code}): {stderr}{stdout}");
        return stdout;
    }

    private static Task<TapdiskServe> Serve(TempDir dir, string image, params string[] more) =>
        TapdiskServe.StartAsync([$"vhd:{image}", "--nbd", $"unix:{dir["s"]}", "--log-dir", dir.Path, .. more]);

    private static void LibraryWrite(string path, long sector, byte[] data)
    {
        using var image = VhdImage.Open(path);
        image.Write(sector, data);
        image.FlushMetadata();
    }

    private static byte[] LibraryRead(string path)
    {
        using var chain = VhdChain.Open(path, VhdOpenFlags.ReadOnly);
        var all = new byte[chain.VirtualSectors * 512];
        chain.Read(0, all);
        return all;
    }

    /// <summary>base (data 0–3 MiB) ← mid (1 MiB at 10 MiB) ← leaf (64 KiB at 5 MiB), 16 MiB.</summary>
    private static string Chain(TempDir dir)
    {
        VhdCreator.Create(dir["base.vhd"], new VhdCreateOptions { SizeBytes = 16 << 20 });
        LibraryWrite(dir["base.vhd"], 0, Pattern(3 << 20, 1));
        VhdCreator.Create(dir["mid.vhd"], new VhdCreateOptions { Type = DiskType.Differencing, ParentPath = dir["base.vhd"] });
        LibraryWrite(dir["mid.vhd"], 10 << 11, Pattern(1 << 20, 2));
        VhdCreator.Create(dir["leaf.vhd"], new VhdCreateOptions { Type = DiskType.Differencing, ParentPath = dir["mid.vhd"] });
        LibraryWrite(dir["leaf.vhd"], 5 << 11, Pattern(64 << 10, 3));
        return dir["leaf.vhd"];
    }

    private static (long Offset, long Length, int Type)[] Map(string output) =>
        output.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Select(f => (long.Parse(f[0]), long.Parse(f[1]), int.Parse(f[2]))).ToArray();

    [Test]
    public async Task Nbdinfo_map_of_a_3_deep_chain_shows_data_of_every_level_and_holes()
    {
        using var dir = new TempDir("nvm");
        string leaf = Chain(dir);
        using var serve = await Serve(dir, leaf, "--readonly");
        Assert.That((await Run("nbdinfo", "--size", serve.Uri)).Trim(), Is.EqualTo((16 << 20).ToString()));
        var map = Map(await Run("nbdinfo", "--map", serve.Uri));
        Assert.That(map, Is.EqualTo(new[]
        {
            (0L, 3L << 20, 0), (3L << 20, 2L << 20, 3), (5L << 20, 64L << 10, 0), ((5L << 20) + (64 << 10), (5L << 20) - (64 << 10), 3),
            (10L << 20, 1L << 20, 0), (11L << 20, 5L << 20, 3),
        }));
        Assert.That(await serve.StopAsync(), Is.Zero);
    }

    [Test]
    public async Task Nbdcopy_and_qemu_img_read_the_chain_as_the_library_does()
    {
        using var dir = new TempDir("nvr");
        string leaf = Chain(dir);
        var expected = LibraryRead(leaf);
        using var serve = await Serve(dir, leaf, "--readonly");
        await Run("nbdcopy", serve.Uri, dir["copy.raw"]);
        Assert.That(File.ReadAllBytes(dir["copy.raw"]), Is.EqualTo(expected));
        await Run("qemu-img", "convert", "-f", "raw", "-O", "raw", serve.Uri, dir["qemu.raw"]);
        Assert.That(File.ReadAllBytes(dir["qemu.raw"]), Is.EqualTo(expected));
        Assert.That(await serve.StopAsync(), Is.Zero);
    }

    [TestCase("aio")]
    [TestCase("sync")]
    public async Task Nbdcopy_into_a_dynamic_vhd_then_vhd_util_check_and_qemu_vpc_agree(string backend)
    {
        using var dir = new TempDir("nvw");
        string image = dir["d.vhd"];
        VhdCreator.Create(image, new VhdCreateOptions { SizeBytes = 32 << 20 });
        var incoming = Pattern(32 << 20, 4);
        incoming.AsSpan(8 << 20, 4 << 20).Clear();    // nbdcopy sends zeros as WRITE_ZEROES or skips them
        incoming.AsSpan(20 << 20, 7 << 20).Clear();
        File.WriteAllBytes(dir["in.raw"], incoming);
        using (var serve = await Serve(dir, image, "--backend", backend))
        {
            await Run("nbdcopy", "--flush", dir["in.raw"], serve.Uri);
            await Run("nbdcopy", serve.Uri, dir["back.raw"]);
            Assert.That(File.ReadAllBytes(dir["back.raw"]), Is.EqualTo(incoming), "read back through the export");
            Assert.That(await serve.StopAsync(), Is.Zero);
        }
        var (code, output, err) = await ChildProcess.RunAsync(RepoPaths.Executable("vhd-util"), ["check", "-n", image], timeout: ToolTimeout);
        Assert.That(code, Is.Zero, output + err);
        Assert.That(output, Does.Contain("is valid"));
        await Run("qemu-img", "compare", "-f", "vpc", "-F", "raw", image, dir["in.raw"]);
        Assert.That(LibraryRead(image), Is.EqualTo(incoming));
    }

    [Test]
    public async Task Qemu_io_writes_into_the_leaf_of_a_chain_leave_the_parents_alone()
    {
        using var dir = new TempDir("nvq");
        string leaf = Chain(dir);
        var expected = LibraryRead(leaf);
        var baseBefore = File.ReadAllBytes(dir["base.vhd"]);
        var midBefore = File.ReadAllBytes(dir["mid.vhd"]);
        using (var serve = await Serve(dir, leaf))
        {
            await Run("qemu-io", "-f", "raw", "-c", "write -P 0x5a 2M 1536k", "-c", "write -P 0x33 13M 4k", "-c", "flush", serve.Uri);
            Assert.That(await serve.StopAsync(), Is.Zero);
        }
        expected.AsSpan(2 << 20, 1536 << 10).Fill(0x5a);
        expected.AsSpan(13 << 20, 4 << 10).Fill(0x33);
        Assert.That(LibraryRead(leaf), Is.EqualTo(expected));
        Assert.That(File.ReadAllBytes(dir["base.vhd"]), Is.EqualTo(baseBefore));
        Assert.That(File.ReadAllBytes(dir["mid.vhd"]), Is.EqualTo(midBefore));
        var (code, output, err) = await ChildProcess.RunAsync(RepoPaths.Executable("vhd-util"), ["check", "-n", leaf], timeout: ToolTimeout);
        Assert.That(code, Is.Zero, output + err);
        // qemu's vpc driver reads only the leaf's own sectors (no chains): they must be ours.
        await Run("qemu-img", "convert", "-f", "vpc", "-O", "raw", leaf, dir["leaf-only.raw"]);
        var own = File.ReadAllBytes(dir["leaf-only.raw"]);
        Assert.That(own.AsSpan(13 << 20, 4 << 10).ToArray().All(b => b == 0x33), Is.True);
        Assert.That(own.AsSpan(2 << 20, 1536 << 10).ToArray().All(b => b == 0x5a), Is.True);
    }

    [Test]
    public async Task Golden_chain_of_blktaps_vhd_util_is_served_byte_exact()
    {
        using var dir = new TempDir("nvg");
        GoldenVhd.Unpack(dir);
        var expected = LibraryRead(dir["leaf.vhd"]);
        using var serve = await Serve(dir, dir["leaf.vhd"], "--readonly");
        await Run("nbdcopy", serve.Uri, dir["copy.raw"]);
        Assert.That(File.ReadAllBytes(dir["copy.raw"]), Is.EqualTo(expected));
        Assert.That(await serve.StopAsync(), Is.Zero);
    }

    [Test]
    public async Task A_corrupt_vhd_makes_serve_exit_with_an_error_naming_the_problem()
    {
        using var dir = new TempDir("nvx");
        File.WriteAllBytes(dir["bad.vhd"], Pattern(1 << 20, 9));
        var (code, stdout, stderr) = await ChildProcess.RunAsync(RepoPaths.Executable("tapdisk"),
            ["serve", $"vhd:{dir["bad.vhd"]}", "--nbd", $"unix:{dir["s"]}", "--log-dir", dir.Path], timeout: ToolTimeout);
        Assert.That(code, Is.Not.Zero);
        Assert.That(stderr + stdout, Does.Contain("bad.vhd").And.Contain("cookie"));
    }
}
