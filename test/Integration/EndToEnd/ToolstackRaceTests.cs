using System.Text.Json;
using BlkTapCtrl.Testing;

namespace BlkTapCtrl.Integration.Tests.EndToEnd;

/// <summary>
/// Issue 9's toolstack races, driven through XenStore with no waiting between the writes a hurried toolstack
/// makes (pause before start is CA32254 in the controller tests). Each ends with no stuck channel, no worker
/// left and no XenStore node recreated behind the toolstack's back.
/// </summary>
[TestFixture, Parallelizable(ParallelScope.All)]
public class ToolstackRaceTests
{
    [Test]
    public async Task Backend_removed_mid_pause_closes_the_vbd_and_writes_nothing_back()
    {
        await using var stack = await StackHarness.StartAsync();
        string p = stack.Backend(4, 51712);
        await stack.RegisterAsync(4, 51712, "aio:" + Image(stack, "a.img"));
        int pid = await stack.WaitForPidAsync(4, 51712);

        await stack.Xs.WriteAsync(p + "/pause", "");
        await stack.Xs.RemoveAsync(p); // before pause-done: the toolstack gave up on this VBD

        await StackHarness.WaitForAsync(() => Task.FromResult(!File.Exists($"/proc/{pid}/cmdline")), TimeSpan.FromSeconds(30),
            "the worker to exit", () => stack.Controller?.StdErr ?? "");
        await StackHarness.WaitForAsync(async () => await stack.TapCtlOkAsync("list", "--json") == "[]\n", TimeSpan.FromSeconds(10), "the channel to go");
        await Task.Delay(300);
        Assert.That(await stack.Xs.ExistsAsync(p), Is.False, "pause-done or tapdisk-error must not recreate the removed backend");
        Assert.That(Directory.GetFiles(stack.RunDir, "tapctrl*"), Is.Empty);
    }

    [Test]
    public async Task Same_devid_recreated_while_the_old_channel_closes_serves_the_new_image_with_one_worker()
    {
        await using var stack = await StackHarness.StartAsync();
        string first = Image(stack, "first.img"), second = Image(stack, "second.img");
        await stack.RegisterAsync(4, 51728, "aio:" + first);
        int oldPid = await stack.WaitForPidAsync(4, 51728);

        // Shutdown, removal and re-creation with another image, back to back.
        string p = stack.Backend(4, 51728);
        await stack.Xs.WriteAsync(p + "/tapdisk-request", "shutdown-normal");
        await stack.Xs.RemoveAsync(p);
        await stack.RegisterAsync(4, 51728, "aio:" + second);

        JsonElement channel = default;
        await StackHarness.WaitForAsync(async () =>
        {
            using var doc = JsonDocument.Parse(await stack.TapCtlOkAsync("list", "--json"));
            if (doc.RootElement.GetArrayLength() != 1) return false;
            channel = doc.RootElement[0].Clone();
            return channel.GetProperty("channel").GetString() == "Running" && channel.GetProperty("pid").GetInt32() != oldPid;
        }, TimeSpan.FromSeconds(30), "one running channel on the new image", () => stack.Controller?.StdErr ?? "");
        Assert.That(channel.GetProperty("params").GetString(), Is.EqualTo("aio:" + second));
        await StackHarness.WaitForAsync(() => Task.FromResult(!File.Exists($"/proc/{oldPid}/cmdline")), TimeSpan.FromSeconds(30), "the old worker to exit");

        // The data path now reaches the second image only.
        string nbd = channel.GetProperty("nbdSocket").GetString()!;
        var (code, _, err) = await ChildProcess.RunAsync("qemu-io", ["-f", "raw", "-c", "write -P 0x6b 0 64k", "-c", "flush", $"nbd+unix:///?socket={nbd}"]);
        Assert.That(code, Is.Zero, err);
        Assert.That(File.ReadAllBytes(second).AsSpan(0, 65536).IndexOfAnyExcept((byte)0x6b), Is.EqualTo(-1));
        Assert.That(File.ReadAllBytes(first).AsSpan(0, 65536).IndexOfAnyExcept((byte)0), Is.EqualTo(-1), "nothing reached the old image");
    }

    [Test]
    public async Task Pause_and_unpause_flapping_faster_than_the_worker_answers_ends_in_the_last_requested_state()
    {
        await using var stack = await StackHarness.StartAsync();
        string p = stack.Backend(4, 51744);
        await stack.RegisterAsync(4, 51744, "aio:" + Image(stack, "c.img"));
        int pid = await stack.WaitForPidAsync(4, 51744);

        for (int i = 0; i < 20; i++)
        {
            await stack.Xs.WriteAsync(p + "/pause", "");
            await stack.Xs.RemoveAsync(p + "/pause");
        }
        await stack.Xs.WriteAsync(p + "/pause", "");
        await StackHarness.WaitForAsync(async () => await stack.Xs.ExistsAsync(p + "/pause-done"), TimeSpan.FromSeconds(30), "pause-done after the flapping",
            () => stack.Controller?.StdErr ?? "");
        using (var doc = JsonDocument.Parse(await stack.TapCtlOkAsync("list", "--json")))
            Assert.That(doc.RootElement[0].GetProperty("channel").GetString(), Is.EqualTo("Paused"));

        await stack.Xs.RemoveAsync(p + "/pause");
        await StackHarness.WaitForAsync(async () =>
        {
            using var doc = JsonDocument.Parse(await stack.TapCtlOkAsync("list", "--json"));
            return doc.RootElement[0].GetProperty("channel").GetString() == "Running";
        }, TimeSpan.FromSeconds(30), "running again");
        Assert.That(await stack.Xs.ExistsAsync(p + "/pause-done"), Is.False);
        using (var doc = JsonDocument.Parse(await stack.TapCtlOkAsync("list", "--json")))
            Assert.That(doc.RootElement[0].GetProperty("pid").GetInt32(), Is.EqualTo(pid), "flapping never costs the worker");
    }

    private static string Image(StackHarness stack, string name)
    {
        string path = Path.Combine(stack.Dir, name);
        File.WriteAllBytes(path, new byte[4 << 20]);
        return path;
    }
}
