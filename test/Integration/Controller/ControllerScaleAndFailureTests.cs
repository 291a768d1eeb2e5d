namespace BlkTapCtrl.Integration.Tests.Controller;

/// <summary>The issue's extra controller scenarios: many VBDs, a killed worker, a pause racing start-up, params switched while paused.</summary>
[TestFixture]
public class ControllerScaleAndFailureTests
{
    private static IEnumerable<string> OpenFiles(int pid)
    {
        foreach (var fd in Directory.GetFiles($"/proc/{pid}/fd"))
        {
            string? target = null;
            try { target = new FileInfo(fd).LinkTarget; } catch (IOException) { }
            if (target != null) yield return target;
        }
    }

    [Test]
    public async Task Sigkill_of_a_worker_breaks_only_its_channel_with_tapdisk_error()
    {
        await using var h = await ControllerHarness.StartAsync();
        string a = await h.CreateVbdAsync(4, 1, "aio:" + h.MakeImage("a.img", 64));
        string b = await h.CreateVbdAsync(4, 2, "aio:" + h.MakeImage("b.img", 64));
        int pidA = ControllerHarness.ParsePid(await h.WaitForKeyAsync(a + "/tapdisk-pid"));
        int pidB = ControllerHarness.ParsePid(await h.WaitForKeyAsync(b + "/tapdisk-pid"));

        Native.Kill(pidA, 9);
        Assert.That(await h.WaitForKeyAsync(a + "/tapdisk-error"), Is.EqualTo("tapdisk killed by signal 9"));
        await Task.Delay(300);
        Assert.That(await h.RunDirLeftoversAsync(), Is.EquivalentTo(new[] { "tapctrlwrite2", "tapctrlread2" }), "A's FIFOs closed, B's kept");
        Assert.That(h.Log.Split('\n').Count(l => l.Contains("spawned")), Is.EqualTo(2), "the broken VBD is not relaunched");

        // B undisturbed: it still pauses and resumes.
        Assert.That(await h.ReadAsync(b + "/tapdisk-error"), Is.Null);
        Assert.That(ControllerHarness.ProcessExists(pidB), Is.True);
        await h.ToolstackWriteAsync(b + "/pause", "");
        await h.WaitForKeyAsync(b + "/pause-done");
        await h.ToolstackRemoveAsync(b + "/pause");
        await h.WaitForAbsenceAsync(b + "/pause-done");

        // A broken channel still goes away cleanly when its directory is removed.
        await h.ToolstackRemoveAsync(a);
        await h.WaitForLogAsync("vbd 4/1 (cookie 0): destroyed", TimeSpan.FromSeconds(10));
    }

    [Test]
    public async Task Pause_requested_while_the_worker_is_still_starting_ends_in_pause_done()
    {
        // The real tapdisk, started half a second late so the pause arrives in launched/wait-pid.
        await using var h = await ControllerHarness.StartAsync(
            h => h.Script("slow-tapdisk", $"sleep 1\nexec {Testing.RepoPaths.Executable("tapdisk")} \"$@\""));
        string p = await h.CreateVbdAsync(5, 1, "aio:" + h.MakeImage("d.img", 64));
        await h.WaitForLogAsync("sent pid", TimeSpan.FromSeconds(60));
        await h.ToolstackWriteAsync(p + "/pause", "");

        await h.WaitForKeyAsync(p + "/pause-done");
        // §1.8: a worker that answered PID but has not opened the image counts as paused (pause-done without
        // OPEN); one that already opened is sent PAUSE. Either way nothing was lost and nothing is broken.
        Assert.That(await h.ReadAsync(p + "/tapdisk-error"), Is.Null);
        Assert.That(h.Log, Does.Contain("received pid response"));

        await h.ToolstackRemoveAsync(p + "/pause");
        await h.WaitForKeyAsync(p + "/tapdisk-pid");
        await h.WaitForAbsenceAsync(p + "/pause-done");
        Assert.That(h.Log.Split('\n').Count(l => l.Contains("spawned")), Is.EqualTo(1), "the same worker opened the image on unpause");
    }

    [Test]
    public async Task Params_switched_while_paused_resumes_the_same_worker_on_the_new_image()
    {
        await using var h = await ControllerHarness.StartAsync();
        string first = h.MakeImage("base.img", 256, fill: 1);
        string second = h.MakeImage("leaf.img", 256, fill: 2);
        string p = await h.CreateVbdAsync(6, 1, "aio:" + first);
        int pid = ControllerHarness.ParsePid(await h.WaitForKeyAsync(p + "/tapdisk-pid"));
        Assert.That(OpenFiles(pid), Does.Contain(first));

        await h.ToolstackWriteAsync(p + "/pause", "");
        await h.WaitForKeyAsync(p + "/pause-done");
        await h.ToolstackWriteAsync(p + "/params", "aio:" + second);
        await h.ToolstackRemoveAsync(p + "/pause");
        await h.WaitForAbsenceAsync(p + "/pause-done");
        await h.WaitUntilAsync(() => Task.FromResult(OpenFiles(pid).Contains(second)), "the worker to reopen on the new image");

        Assert.That(OpenFiles(pid), Does.Not.Contain(first), "the old image is closed");
        Assert.That(ControllerHarness.ParsePid((await h.ReadAsync(p + "/tapdisk-pid"))!), Is.EqualTo(pid), "same worker resumed");
        Assert.That(File.ReadAllBytes(first).All(x => x == 1) && File.ReadAllBytes(second).All(x => x == 2), Is.True, "data intact");
    }
}
