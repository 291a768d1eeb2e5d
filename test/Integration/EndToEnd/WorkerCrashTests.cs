using System.Text.Json;
using BlkTapCtrl.Testing;

namespace BlkTapCtrl.Integration.Tests.EndToEnd;

/// <summary>
/// Issue 9: a worker killed mid-flight. Its VBD is reported broken (unclean exit: no relaunch, reference §1.9),
/// every write the client saw acknowledged by a flush is in the image, and the toolstack's usual remedy —
/// remove the backend and create it again — brings the VBD back on the same image with the data intact.
/// </summary>
[TestFixture, Parallelizable(ParallelScope.All)]
public class WorkerCrashTests
{
    [Test]
    public async Task Killed_worker_breaks_its_vbd_keeps_acknowledged_writes_and_recreation_serves_them_again()
    {
        await using var stack = await StackHarness.StartAsync();
        string image = Path.Combine(stack.Dir, "disk.img");
        File.WriteAllBytes(image, new byte[8 << 20]);
        string p = stack.Backend(6, 51712);
        await stack.RegisterAsync(6, 51712, "aio:" + image);
        int pid = await stack.WaitForPidAsync(6, 51712);
        string nbd = (await stack.Xs.ReadAsync(p + "/nbd-socket")).TrimEnd('\0');

        var (code, _, err) = await ChildProcess.RunAsync("qemu-io",
            ["-f", "raw", "-c", "write -P 0x3c 1M 512k", "-c", "flush", $"nbd+unix:///?socket={nbd}"]);
        Assert.That(code, Is.Zero, err);
        Signals.Send(pid, Signals.SIGKILL);

        await StackHarness.WaitForAsync(async () => await stack.Xs.TryReadAsync(p + "/tapdisk-error") != null, TimeSpan.FromSeconds(30),
            "tapdisk-error", () => stack.Controller?.StdErr ?? "");
        Assert.That(await stack.Xs.ReadAsync(p + "/tapdisk-error"), Does.Contain("killed by signal 9"));
        using (var doc = JsonDocument.Parse(await stack.TapCtlOkAsync("list", "--json")))
        {
            var c = doc.RootElement[0];
            Assert.That((c.GetProperty("vbd").GetString(), c.GetProperty("pid").GetInt32()), Is.EqualTo(("Broken", 0)),
                "broken, and no worker relaunched behind the toolstack's back");
        }
        Assert.That(File.ReadAllBytes(image).AsSpan(1 << 20, 512 << 10).IndexOfAnyExcept((byte)0x3c), Is.EqualTo(-1),
            "the flushed write is in the image");

        await stack.Xs.RemoveAsync(p);
        await StackHarness.WaitForAsync(async () => await stack.TapCtlOkAsync("list", "--json") == "[]\n", TimeSpan.FromSeconds(30), "the broken channel to go");
        await stack.RegisterAsync(6, 51712, "aio:" + image);
        await stack.WaitForPidAsync(6, 51712);
        nbd = (await stack.Xs.ReadAsync(p + "/nbd-socket")).TrimEnd('\0');
        (code, var output, err) = await ChildProcess.RunAsync("qemu-io",
            ["-f", "raw", "-c", "read -P 0x3c 1M 512k", $"nbd+unix:///?socket={nbd}"]);
        Assert.That(code, Is.Zero, err);
        Assert.That(output, Does.Not.Contain("Pattern verification failed"));
    }
}
