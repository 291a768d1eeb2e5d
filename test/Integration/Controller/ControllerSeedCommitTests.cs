namespace BlkTapCtrl.Integration.Tests.Controller;

/// <summary>The controller rows of reference §5, one test each, named after the CA number.</summary>
[TestFixture]
public class ControllerSeedCommitTests
{
    [Test]
    public async Task CA26523_exit_status_second_instance_exits_0_and_says_why()
    {
        await using var h = await ControllerHarness.StartAsync();
        using var second = h.StartController(null);
        Assert.That(await second.WaitAsync(TimeSpan.FromSeconds(20)), Is.Zero);
        Assert.That(second.StdErr, Does.Contain("another instance is running"));
        Assert.That(h.Controller.HasExited, Is.False, "the first instance keeps running");
        Assert.That(await h.StopControllerAsync(), Is.Zero);
    }

    [Test]
    public async Task CA26523_child_affiliation_tapdisk_exiting_3_before_PID_RSP_is_reported_and_not_relaunched()
    {
        await using var h2 = await ControllerHarness.StartAsync(h => h.Script("fake-tapdisk", $"echo started >> {h.Dir["starts"]}\nexit 3"));
        string p = await h2.CreateVbdAsync(1, 768, "aio:/nonexistent.img");

        var error = await h2.WaitForKeyAsync(p + "/tapdisk-error");
        Assert.That(error, Is.EqualTo("tapdisk died with status 3"));
        Assert.That(h2.Log, Does.Contain("tapdisk died with status 3"));
        await Task.Delay(500);
        Assert.That(File.ReadAllLines(h2.Dir["starts"]), Has.Length.EqualTo(1), "an unclean exit leaves the VBD broken: no relaunch");
        Assert.That(await h2.ReadAsync(p + "/tapdisk-pid"), Is.Null);
    }

    [Test]
    public async Task CA34208_crashed_channel_ignores_pause_no_pause_done_no_new_error()
    {
        await using var h2 = await ControllerHarness.StartAsync(tapdiskOverride: "/bin/false"); // exits 1 at once
        string p = await h2.CreateVbdAsync(1, 832, "aio:/whatever.img");
        Assert.That(await h2.WaitForKeyAsync(p + "/tapdisk-error"), Is.EqualTo("tapdisk died with status 1"));

        await h2.ToolstackRemoveAsync(p + "/tapdisk-error");
        int errorsBefore = CountErrors(h2.Log);
        await h2.ToolstackWriteAsync(p + "/pause", "");
        await Task.Delay(700);
        Assert.That(await h2.ReadAsync(p + "/pause-done"), Is.Null, "fenced channel: pause ignored");
        Assert.That(await h2.ReadAsync(p + "/tapdisk-error"), Is.Null, "no new error");
        Assert.That(CountErrors(h2.Log), Is.EqualTo(errorsBefore), "no new error logged");
    }

    private static int CountErrors(string log) => log.Split('\n').Count(l => l.Contains("[ERR]"));

    [Test]
    public async Task CA33664_recycled_directory_gets_a_new_channel_with_cookie_plus_one()
    {
        await using var h = await ControllerHarness.StartAsync();
        string p = await h.CreateVbdAsync(1, 51712, "aio:" + h.MakeImage("d.img", 256));
        int oldPid = ControllerHarness.ParsePid(await h.WaitForKeyAsync(p + "/tapdisk-pid"));
        Assert.That(await h.ReadAsync(p + "/tapdisk-uuid"), Is.EqualTo("0"));

        // The toolstack recreates the directory (without our uuid) before we saw it go.
        await h.ToolstackRemoveAsync(p + "/tapdisk-uuid");
        await h.ToolstackRemoveAsync(p + "/tapdisk-pid");
        await h.ToolstackWriteAsync(p, "");

        await h.WaitUntilAsync(async () => await h.ReadAsync(p + "/tapdisk-uuid") == "1", "the new channel's cookie 1");
        int newPid = ControllerHarness.ParsePid(await h.WaitForKeyAsync(p + "/tapdisk-pid"));
        Assert.That(newPid, Is.Not.EqualTo(oldPid));
        await h.WaitUntilAsync(() => Task.FromResult(!ControllerHarness.ProcessExists(oldPid)), "old tapdisk to exit");
        Assert.That(h.Log, Does.Contain("re-probe kicked"));
    }

    [Test]
    public async Task CA33664_directory_removed_meanwhile_is_never_recreated()
    {
        await using var h = await ControllerHarness.StartAsync();
        string p = await h.CreateVbdAsync(1, 51728, "aio:" + h.MakeImage("d.img", 256));
        int pid = ControllerHarness.ParsePid(await h.WaitForKeyAsync(p + "/tapdisk-pid"));

        // Recycle, then the directory goes away before the old channel finished closing.
        await h.ToolstackRemoveAsync(p + "/tapdisk-uuid");
        await h.ToolstackWriteAsync(p, "");
        await h.ToolstackRemoveAsync(p);

        await h.WaitUntilAsync(() => Task.FromResult(!ControllerHarness.ProcessExists(pid)), "tapdisk to exit");
        await h.WaitForLogAsync("destroyed", TimeSpan.FromSeconds(10));
        await Task.Delay(500);
        Assert.That(await h.Xs.ExistsAsync(p), Is.False, "the re-probe must not recreate a removed directory");
        Assert.That(await h.RunDirLeftoversAsync(), Is.Empty);
    }

    [Test]
    public async Task CA32254_pause_before_start_is_acknowledged_without_launching_and_unpause_launches_with_fresh_params()
    {
        await using var h = await ControllerHarness.StartAsync();
        string first = h.MakeImage("first.img", 128);
        string p = await h.CreateVbdAsync(1, 1, "aio:" + first, request: "start", paused: true);

        await h.WaitForKeyAsync(p + "/pause-done");
        await Task.Delay(300);
        Assert.That(await h.ReadAsync(p + "/tapdisk-pid"), Is.Null, "a paused VBD counts as paused without a tapdisk");
        Assert.That(await h.RunDirLeftoversAsync(), Is.Empty, "no worker launched");

        string second = h.MakeImage("second.img", 512);
        await h.ToolstackWriteAsync(p + "/params", "aio:" + second);
        await h.ToolstackRemoveAsync(p + "/pause");
        await h.WaitForKeyAsync(p + "/tapdisk-pid");
        Assert.That(await h.ReadAsync(p + "/sectors"), Is.EqualTo("512\0"), "OPEN used the params re-read at unpause");
        Assert.That(await h.ReadAsync(p + "/pause-done"), Is.Null);
    }

    [Test]
    public async Task CA32254_pause_survives_a_worker_exit_and_start_resurrects_a_closed_channel()
    {
        await using var h = await ControllerHarness.StartAsync();
        string p = await h.CreateVbdAsync(1, 2, "aio:" + h.MakeImage("d.img", 128));
        int pid = ControllerHarness.ParsePid(await h.WaitForKeyAsync(p + "/tapdisk-pid"));

        await h.ToolstackWriteAsync(p + "/tapdisk-request", "shutdown-normal");
        await h.WaitUntilAsync(() => Task.FromResult(!ControllerHarness.ProcessExists(pid)), "tapdisk to exit");
        await h.ToolstackWriteAsync(p + "/pause", "");
        await h.WaitForKeyAsync(p + "/pause-done");

        await h.ToolstackRemoveAsync(p + "/tapdisk-pid");
        await h.ToolstackWriteAsync(p + "/tapdisk-request", "start");
        await Task.Delay(300);
        Assert.That(await h.ReadAsync(p + "/tapdisk-pid"), Is.Null, "still paused: start does not launch");

        await h.ToolstackRemoveAsync(p + "/pause");
        int newPid = ControllerHarness.ParsePid(await h.WaitForKeyAsync(p + "/tapdisk-pid"));
        Assert.That(newPid, Is.Not.EqualTo(pid), "the closed channel was resurrected with a new tapdisk");
    }

    [Test]
    public async Task CA30816_device_reset_sends_CLOSE_and_frees_the_channel_after_the_worker_exits_0()
    {
        await using var h = await ControllerHarness.StartAsync();
        string image = h.MakeImage("d.img", 256, fill: 0x5a);
        string p = await h.CreateVbdAsync(1, 3, "aio:" + image);
        int pid = ControllerHarness.ParsePid(await h.WaitForKeyAsync(p + "/tapdisk-pid"));

        await h.ToolstackRemoveAsync(p);
        await h.WaitUntilAsync(() => Task.FromResult(!ControllerHarness.ProcessExists(pid)), "tapdisk to exit");
        await h.WaitForLogAsync("destroyed", TimeSpan.FromSeconds(10));
        Assert.That(h.Log, Does.Contain("sent close"));
        await h.WaitForCleanExitAsync(pid, TimeSpan.FromSeconds(30));
        Assert.That(h.Log, Does.Not.Contain("died with status"));
        Assert.That(File.ReadAllBytes(image).All(b => b == 0x5a), Is.True, "image intact");
        Assert.That(await h.RunDirLeftoversAsync(), Is.Empty);
    }

    [Test]
    public async Task CA30816_device_reset_after_shutdown_force_sends_FORCE_SHUTDOWN()
    {
        await using var h = await ControllerHarness.StartAsync();
        string p = await h.CreateVbdAsync(1, 4, "aio:" + h.MakeImage("d.img", 64));
        int pid = ControllerHarness.ParsePid(await h.WaitForKeyAsync(p + "/tapdisk-pid"));
        await h.ToolstackWriteAsync(p + "/tapdisk-request", "shutdown-force");
        await h.WaitUntilAsync(() => Task.FromResult(!ControllerHarness.ProcessExists(pid)), "tapdisk to exit");
        Assert.That(h.Log, Does.Contain("sent force shutdown"));
    }
}
