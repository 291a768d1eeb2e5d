using System.Text.Json;
using BlkTapCtrl.Testing;

namespace BlkTapCtrl.Integration.Tests.Nbd;

/// <summary>
/// <c>tapdisk serve</c> as a real process against the NBD peers: nbdinfo, nbdcopy, qemu-img, qemu-io and
/// fio's nbd engine, over unix sockets and TCP.
/// </summary>
public class TapdiskServePeerTests
{
    private static readonly TimeSpan ToolTimeout = TimeSpan.FromSeconds(60);


    private static async Task<string> Run(string tool, params string[] args)
    {
        var (code, stdout, stderr) = await ChildProcess.RunAsync(tool, args, timeout: ToolTimeout);
        Assert.That(code, Is.Zero, $"{tool} {string.Join(' ', args)} failed ({code}): {stderr}{stdout}");
        return stdout;
    }

    /// <summary>A 16 MiB sparse raw image with data at 1–2 MiB and 9–12 MiB.</summary>
    private static string SparseImage(TempDir dir)
    {
        string path = dir["disk.raw"];
        using var f = new FileStream(path, FileMode.Create);
        f.SetLength(16 << 20);
        f.Position = 1 << 20;
        f.Write(TestBytes.Pattern(1 << 20, 1));
        f.Position = 9 << 20;
        f.Write(TestBytes.Pattern(3 << 20, 2));
        return path;
    }

    [Test]
    public async Task Nbdinfo_reports_size_flags_and_the_sparse_map()
    {
        using var dir = new TempDir("nbdi");
        string image = SparseImage(dir);
        using var serve = await TapdiskServe.StartAsync($"aio:{image}", "--nbd", $"unix:{dir["s"]}");
        using var info = JsonDocument.Parse(await Run("nbdinfo", "--json", serve.Uri));
        var export = info.RootElement.GetProperty("exports")[0];
        Assert.That(export.GetProperty("export-size").GetInt64(), Is.EqualTo(16 << 20));
        Assert.That(export.GetProperty("is_read_only").GetBoolean(), Is.False);
        Assert.That(export.GetProperty("can_multi_conn").GetBoolean(), Is.True);
        Assert.That(export.GetProperty("can_flush").GetBoolean(), Is.True);
        Assert.That(export.GetProperty("can_fua").GetBoolean(), Is.True);
        Assert.That(export.GetProperty("can_zero").GetBoolean(), Is.True);
        Assert.That(export.GetProperty("block_size_minimum").GetInt64(), Is.EqualTo(512));

        var map = (await Run("nbdinfo", "--map", serve.Uri)).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).Select(f => (long.Parse(f[0]), long.Parse(f[1]), int.Parse(f[2])))
            .ToArray();
        Assert.That(map, Is.EqualTo(new[]
        {
            (0L, 1L << 20, 3), (1L << 20, 1L << 20, 0), (2L << 20, 7L << 20, 3), (9L << 20, 3L << 20, 0), (12L << 20, 4L << 20, 3),
        }));
        Assert.That(await serve.StopAsync(), Is.Zero);
    }

    [Test]
    public async Task Nbdcopy_both_ways_is_byte_exact()
    {
        using var dir = new TempDir("nbdc");
        string image = SparseImage(dir);
        var original = File.ReadAllBytes(image);
        using var serve = await TapdiskServe.StartAsync($"aio:{image}", "--nbd", $"unix:{dir["s"]}");
        await Run("nbdcopy", serve.Uri, dir["out.raw"]);
        Assert.That(File.ReadAllBytes(dir["out.raw"]), Is.EqualTo(original));

        var incoming = TestBytes.Pattern(16 << 20, 3);
        incoming.AsSpan(4 << 20, 2 << 20).Clear(); // a zero run nbdcopy sends as WRITE_ZEROES
        File.WriteAllBytes(dir["in.raw"], incoming);
        await Run("nbdcopy", "--flush", dir["in.raw"], serve.Uri);
        Assert.That(await serve.StopAsync(), Is.Zero);
        Assert.That(File.ReadAllBytes(image), Is.EqualTo(incoming));
    }

    [Test]
    public async Task Qemu_img_convert_and_compare_over_nbd_unix()
    {
        using var dir = new TempDir("nbdq");
        string image = SparseImage(dir);
        using var serve = await TapdiskServe.StartAsync($"aio:{image}", "--nbd", $"unix:{dir["s"]}", "--readonly");
        await Run("qemu-img", "convert", "-f", "raw", "-O", "raw", serve.Uri, dir["copy.raw"]);
        Assert.That(File.ReadAllBytes(dir["copy.raw"]), Is.EqualTo(File.ReadAllBytes(image)));
        await Run("qemu-img", "compare", "-f", "raw", "-F", "raw", image, serve.Uri);
        Assert.That(await serve.StopAsync(), Is.Zero);
    }

    [Test]
    public async Task Qemu_io_writes_land_in_the_image_and_read_back()
    {
        using var dir = new TempDir("nbdw");
        string image = SparseImage(dir);
        using var serve = await TapdiskServe.StartAsync($"aio:{image}", "--nbd", $"unix:{dir["s"]}", "--backend", "sync");
        string output = await Run("qemu-io", "-f", "raw", "-c", "write -P 0x5a 3M 64k", "-c", "write -z 1M 4k",
            "-c", "read -P 0x5a 3M 64k", "-c", "flush", serve.Uri);
        Assert.That(output, Does.Contain("wrote 65536/65536 bytes at offset 3145728"));
        Assert.That(output, Does.Not.Contain("Pattern verification failed"));
        Assert.That(await serve.StopAsync(), Is.Zero);
        var file = File.ReadAllBytes(image);
        Assert.That(file.AsSpan(3 << 20, 64 << 10).IndexOfAnyExcept((byte)0x5a), Is.EqualTo(-1));
        Assert.That(file.AsSpan(1 << 20, 4096).IndexOfAnyExcept((byte)0), Is.EqualTo(-1));
        Assert.That(file[(1 << 20) + 4096], Is.EqualTo(TestBytes.Pattern(1 << 20, 1)[4096]));
    }

    [Test]
    public async Task Fio_random_writes_through_nbd_verify()
    {
        using var dir = new TempDir("nbdf");
        string image = dir["disk.raw"];
        using (var f = File.Create(image)) f.SetLength(8 << 20);
        using var serve = await TapdiskServe.StartAsync($"aio:{image}", "--nbd", $"unix:{dir["s"]}");
        string output = await Run("fio", "--name=verify", "--ioengine=nbd", $"--uri={serve.Uri}", "--rw=randwrite", "--bs=4k",
            "--iodepth=16", "--size=8M", "--verify=crc32c", "--do_verify=1", "--output-format=terse", "--terse-version=3");
        var fields = output.Trim().Split('\n')[^1].Split(';');
        Assert.That(fields[4], Is.EqualTo("0"), $"fio reported error {fields[4]}: {output}");
        Assert.That(await serve.StopAsync(), Is.Zero);
    }

    [Test]
    public async Task Tcp_port_0_picks_a_port_and_serves_a_ram_image()
    {
        using var dir = new TempDir("nbdt");
        string image = dir["ram.img"];
        File.WriteAllBytes(image, TestBytes.Pattern(2 << 20, 4));
        using var serve = await TapdiskServe.StartAsync($"ram:{image}", "--nbd", "tcp:127.0.0.1:0");
        Assert.That(serve.Endpoint, Does.Match(@"^tcp:127\.0\.0\.1:[1-9][0-9]*$"));
        Assert.That((await Run("nbdinfo", "--size", serve.Uri)).Trim(), Is.EqualTo((2 << 20).ToString()));
        await Run("nbdcopy", serve.Uri, dir["out.raw"]);
        Assert.That(File.ReadAllBytes(dir["out.raw"]), Is.EqualTo(TestBytes.Pattern(2 << 20, 4)));
        Assert.That(await serve.StopAsync(), Is.Zero);
    }

    [Test]
    public async Task Read_only_export_refuses_qemu_io_writes_and_leaves_the_image_alone()
    {
        using var dir = new TempDir("nbdr");
        string image = SparseImage(dir);
        var before = File.ReadAllBytes(image);
        using var serve = await TapdiskServe.StartAsync($"aio:{image}", "--nbd", $"unix:{dir["s"]}", "--readonly");
        var (code, stdout, stderr) = await ChildProcess.RunAsync("qemu-io", ["-f", "raw", "-c", "write -P 1 0 4k", serve.Uri], timeout: ToolTimeout);
        Assert.That(stdout + stderr, Does.Contain("ermission denied").Or.Contain("not permitted").Or.Contain("read-only").Or.Contain("Read-only"),
            $"exit {code}");
        await Run("nbdinfo", "--is", "read-only", serve.Uri); // exits 0 only when the export says read-only
        Assert.That(await serve.StopAsync(), Is.Zero);
        Assert.That(File.ReadAllBytes(image), Is.EqualTo(before));
    }

    [TestCase("none", true)]
    [TestCase("writeback", false)]
    public async Task Cache_mode_decides_O_DIRECT_and_flushes_reach_the_file(string cache, bool direct)
    {
        using var dir = new TempDir("nbdm");
        string image = SparseImage(dir);
        using var serve = await TapdiskServe.StartAsync($"aio:{image}", "--nbd", $"unix:{dir["s"]}", "--cache", cache);
        const int O_DIRECT = 0x4000;
        bool? sawDirect = null;
        foreach (var fd in Directory.GetFiles($"/proc/{serve.Process.Pid}/fd"))
        {
            var target = new FileInfo(fd).LinkTarget;
            if (target != image) continue;
            var flagsLine = File.ReadAllLines($"/proc/{serve.Process.Pid}/fdinfo/{Path.GetFileName(fd)}").First(l => l.StartsWith("flags:"));
            int flags = Convert.ToInt32(flagsLine.Split(':')[1].Trim(), 8);
            sawDirect = (sawDirect ?? false) || (flags & O_DIRECT) != 0;
        }
        Assert.That(sawDirect, Is.EqualTo(direct), $"--cache {cache}");
        await Run("qemu-io", "-f", "raw", "-c", "write -P 0x77 5M 1M", "-c", "flush", serve.Uri);
        Assert.That(await serve.StopAsync(), Is.Zero);
        Assert.That(File.ReadAllBytes(image).AsSpan(5 << 20, 1 << 20).IndexOfAnyExcept((byte)0x77), Is.EqualTo(-1));
    }

    [Test]
    public async Task Sigterm_closes_the_export_and_removes_the_socket()
    {
        using var dir = new TempDir("nbds");
        string image = SparseImage(dir);
        using var serve = await TapdiskServe.StartAsync($"aio:{image}", "--nbd", $"unix:{dir["s"]}");
        Assert.That(File.Exists(dir["s"]), Is.True);
        Assert.That(await serve.StopAsync(), Is.Zero);
        Assert.That(File.Exists(dir["s"]), Is.False);
        Assert.That(serve.Process.StdErr, Does.Contain("tapdisk_vbd_close"));
    }

    [TestCase(new[] { "aio:/nonexistent/x.raw", "--nbd", "unix:/tmp/never" }, 2, "cannot open")]
    [TestCase(new[] { "aio:/tmp/x.raw" }, 22, "no --nbd endpoint")]
    [TestCase(new[] { "qcow:/tmp/x", "--nbd", "unix:/tmp/y" }, 22, "image type 'qcow'")]
    [TestCase(new[] { "aio:/tmp/x", "--nbd", "udp:1" }, 22, "expected unix:PATH or tcp:HOST:PORT")]
    [TestCase(new[] { "aio:/tmp/x", "--nbd", "unix:/tmp/y", "--cache", "always" }, 22, "--cache 'always'")]
    public async Task Bad_arguments_are_refused_with_a_clear_message(string[] args, int exit, string message)
    {
        var (code, _, stderr) = await ChildProcess.RunAsync(RepoPaths.Executable("tapdisk"), ["serve", .. args], timeout: ToolTimeout);
        Assert.That(code, Is.EqualTo(exit));
        Assert.That(stderr, Does.Contain(message));
    }
}
