using BlkTapCtrl.Testing;

namespace BlkTapCtrl.Integration.Tests.Nbd;

/// <summary>
/// Every I/O backend of <c>tapdisk serve</c> (lio, rwio, io_uring), with and without the page cache, against
/// the same peers: fio's random writes with a crc32c verify pass, then qemu-img compare of the image file
/// with what qemu-img reads through the export.
/// </summary>
[TestFixture, Parallelizable(ParallelScope.All)]
public class IoBackendPeerTests
{
    [TestCase("aio", "none")]
    [TestCase("aio", "writeback")]
    [TestCase("sync", "writeback")]
    [TestCase("uring", "none")]
    [TestCase("uring", "writeback")]
    public async Task Fio_verify_and_qemu_img_compare_through_the_backend(string backend, string cache)
    {
        using var dir = new TempDir("iob");
        string image = dir["disk.raw"];
        using (var f = File.Create(image)) f.SetLength(16 << 20);
        Directory.CreateDirectory(dir["log"]);
        using var serve = await TapdiskServe.StartAsync($"aio:{image}", "--nbd", $"unix:{dir["s"]}", "--backend", backend,
            "--cache", cache, "--log-dir", dir["log"]);

        var (code, output, err) = await ChildProcess.RunAsync("fio",
            ["--name=verify", "--ioengine=nbd", $"--uri={serve.Uri}", "--rw=randwrite", "--bs=4k,64k", "--bsrange=4k-64k", "--iodepth=32",
             "--size=16M", "--verify=crc32c", "--do_verify=1", "--verify_fatal=1", "--output-format=terse", "--terse-version=3"],
            timeout: TimeSpan.FromMinutes(2));
        Assert.That(code, Is.Zero, err + output);
        Assert.That(output.Trim().Split('\n')[^1].Split(';')[4], Is.EqualTo("0"), output);

        (code, output, err) = await ChildProcess.RunAsync("qemu-img", ["compare", "-f", "raw", "-F", "raw", image, serve.Uri],
            timeout: TimeSpan.FromMinutes(1));
        Assert.That(code, Is.Zero, $"qemu-img compare: {output}{err}");
        Assert.That(await serve.StopAsync(), Is.Zero, serve.Process.StdErr);
        Assert.That(serve.Process.StdErr, Does.Not.Contain("unavailable"), "the backend asked for is the one that ran");
    }
}
