namespace BlkTapCtrl.Integration.Tests.Controller;

/// <summary>
/// A VBD's whole life through the real stack: toolstack writes → probe → tapdisk spawned → PID/OPEN →
/// keys published → pause/unpause → shutdown → removal, with nothing left behind.
/// </summary>
[TestFixture]
public class ControllerLifecycleTests
{
    [Test]
    public async Task Vbd_runs_pauses_resumes_and_goes_away_leaving_nothing()
    {
        await using var h = await ControllerHarness.StartAsync();
        string image = h.MakeImage("disk.img", 4096);
        string p = await h.CreateVbdAsync(1, 51712, "aio:" + image);

        var pidValue = await h.WaitForKeyAsync(p + "/tapdisk-pid");
        int pid = ControllerHarness.ParsePid(pidValue);
        Assert.That(pidValue, Does.EndWith("\0"), "tapdisk-pid is written with a trailing NUL (§1.2)");
        Assert.That(await h.ReadAsync(p + "/sectors"), Is.EqualTo("4096\0"));
        Assert.That(await h.ReadAsync(p + "/sector-size"), Is.EqualTo("512\0"));
        Assert.That(await h.ReadAsync(p + "/info"), Is.EqualTo("0\0"));
        Assert.That(await h.ReadAsync(p + "/tapdisk-uuid"), Is.EqualTo("0"), "first cookie, plain decimal");
        Assert.That(ControllerHarness.ParentOf(pid), Is.EqualTo(h.Controller.Pid), "tapdisk is our child, not detached (CA-26523)");
        Assert.That(await h.RunDirLeftoversAsync(), Is.EquivalentTo(new[] { "tapctrlwrite1", "tapctrlread1" }));

        await h.ToolstackWriteAsync(p + "/pause", "");
        await h.WaitForKeyAsync(p + "/pause-done");
        Assert.That(await h.ReadAsync(p + "/pause-done"), Is.EqualTo(""));
        await h.ToolstackRemoveAsync(p + "/pause");
        await h.WaitForAbsenceAsync(p + "/pause-done");
        Assert.That(ControllerHarness.ProcessExists(pid), Is.True, "unpause resumed the same worker");

        await h.ToolstackWriteAsync(p + "/tapdisk-request", "shutdown-normal");
        await h.WaitUntilAsync(() => Task.FromResult(!ControllerHarness.ProcessExists(pid)), "tapdisk to exit after CLOSE");
        await h.WaitForCleanExitAsync(pid, TimeSpan.FromSeconds(30));

        await h.ToolstackRemoveAsync(p);
        await h.WaitForLogAsync("destroyed", TimeSpan.FromSeconds(10));
        Assert.That(await h.RunDirLeftoversAsync(), Is.Empty, "FIFOs unlinked");
        Assert.That(await h.Xs.ExistsAsync(p), Is.False, "nothing recreated the backend directory");
        Assert.That(h.Log, Does.Not.Contain("[ERR]"));

        Assert.That(await h.StopControllerAsync(), Is.Zero, "clean SIGTERM stop exits 0");
    }

    [Test]
    public async Task Sigterm_closes_every_vbd_waits_for_the_workers_and_exits_0()
    {
        await using var h = await ControllerHarness.StartAsync();
        var pids = new List<int>();
        for (int dev = 1; dev <= 3; dev++)
        {
            string p = await h.CreateVbdAsync(2, dev, "aio:" + h.MakeImage($"d{dev}.img", 128));
            pids.Add(ControllerHarness.ParsePid(await h.WaitForKeyAsync(p + "/tapdisk-pid")));
        }
        Assert.That(await h.StopControllerAsync(), Is.Zero);
        Assert.That(pids.Where(ControllerHarness.ProcessExists), Is.Empty, "every worker closed and exited");
        Assert.That(h.Log, Does.Contain("stopping: closing 3 VBDs"));
        Assert.That(File.Exists(h.PidFile), Is.False);
    }
}
