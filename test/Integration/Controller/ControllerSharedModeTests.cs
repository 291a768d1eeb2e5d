using BlkTapCtrl.Testing;

namespace BlkTapCtrl.Integration.Tests.Controller;

/// <summary>
/// Shared mode (reference §1.5 step 1, §1.8): while <c>/local/domain/0/tapdisk/share-tapdisks</c> exists, a new VBD
/// whose driver matches a live worker's is served by that worker (same pid, PID then OPEN with the SHARED flag on
/// its FIFOs) instead of a new tapdisk. Each VBD keeps its own minor and NBD export; closing one leaves the other
/// served; the worker exits after the last.
/// </summary>
[TestFixture]
public class ControllerSharedModeTests
{
    [Test]
    public async Task Share_tapdisks_serves_two_vbds_from_one_worker_each_with_its_own_export_until_the_last_closes()
    {
        await using var h = await ControllerHarness.StartAsync();
        await h.ToolstackWriteAsync("/local/domain/0/tapdisk/share-tapdisks", "");
        string imageA = h.MakeImage("a.img", 2048, fill: 0xAA);
        string imageB = h.MakeImage("b.img", 4096, fill: 0xBB);

        string a = await h.CreateVbdAsync(5, 1, "aio:" + imageA);
        int pidA = ControllerHarness.ParsePid(await h.WaitForKeyAsync(a + "/tapdisk-pid"));
        string b = await h.CreateVbdAsync(5, 2, "aio:" + imageB);
        int pidB = ControllerHarness.ParsePid(await h.WaitForKeyAsync(b + "/tapdisk-pid"));
        Assert.That(pidB, Is.EqualTo(pidA), "the second VBD joined the first one's worker");
        Assert.That(await h.ReadAsync(a + "/sectors"), Is.EqualTo("2048\0"));
        Assert.That(await h.ReadAsync(b + "/sectors"), Is.EqualTo("4096\0"), "each VBD opened its own image");

        string socketA = (await h.WaitForKeyAsync(a + "/nbd-socket")).TrimEnd('\0');
        string socketB = (await h.WaitForKeyAsync(b + "/nbd-socket")).TrimEnd('\0');
        Assert.That(socketB, Is.Not.EqualTo(socketA));
        Assert.That(await NbdSizeAsync(socketA), Is.EqualTo(2048 * 512));
        Assert.That(await NbdSizeAsync(socketB), Is.EqualTo(4096 * 512));

        // Closing A leaves the shared worker serving B.
        await h.ToolstackWriteAsync(a + "/tapdisk-request", "shutdown-normal");
        await h.WaitUntilAsync(async () => !File.Exists(socketA), "A's export to close");
        Assert.That(ControllerHarness.ProcessExists(pidA), Is.True, "the worker still serves B");
        Assert.That(await NbdSizeAsync(socketB), Is.EqualTo(4096 * 512));

        // Closing B, the last, ends the worker.
        await h.ToolstackWriteAsync(b + "/tapdisk-request", "shutdown-normal");
        await h.WaitUntilAsync(() => Task.FromResult(!ControllerHarness.ProcessExists(pidA)), "the shared worker to exit after its last VBD");
        await h.ToolstackRemoveAsync(a);
        await h.ToolstackRemoveAsync(b);
        await h.WaitUntilAsync(async () => (await h.RunDirLeftoversAsync()).Length == 0, "no FIFO or socket left");
        Assert.That(h.Log, Does.Not.Contain("[ERR]"));
        Assert.That(await h.StopControllerAsync(), Is.Zero);
    }

    private static async Task<long> NbdSizeAsync(string socket)
    {
        var (code, output, error) = await ChildProcess.RunAsync("nbdinfo", ["--size", $"nbd+unix:///?socket={socket}"], timeout: TimeSpan.FromSeconds(30));
        Assert.That(code, Is.Zero, $"nbdinfo --size on {socket}: {error}");
        return long.Parse(output.Trim(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
