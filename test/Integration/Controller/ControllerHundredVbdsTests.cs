namespace BlkTapCtrl.Integration.Tests.Controller;

/// <summary>
/// 100 VBDs brought up and torn down in one test. It starts 100 real tapdisk processes, so it runs on its own
/// rather than beside other process-heavy fixtures on the 2-core CI machine.
/// </summary>
[TestFixture, NonParallelizable]
public class ControllerHundredVbdsTests
{
    [Test]
    public async Task Hundred_vbds_up_and_down_leave_no_process_fifo_or_xenstore_node()
    {
        await using var h = await ControllerHarness.StartAsync((string?)null, "--pid-timeout", "120", "--wait-timeout", "120");
        string image = h.MakeImage("shared.img", 64);
        const int count = 100;
        var paths = new List<string>();
        for (int dev = 1; dev <= count; dev++)
            paths.Add(await h.CreateVbdAsync(3, dev, "aio:" + image, mode: "r"));

        var pids = new List<int>();
        foreach (var p in paths)
            pids.Add(ControllerHarness.ParsePid(await h.WaitForKeyAsync(p + "/tapdisk-pid", TimeSpan.FromSeconds(180))));
        Assert.That(pids.Distinct().Count(), Is.EqualTo(count), "one worker per VBD");
        Assert.That(await h.RunDirLeftoversAsync(), Has.Length.EqualTo(2 * count), "two FIFOs per VBD");

        foreach (var p in paths)
            await h.ToolstackRemoveAsync(p);
        await h.WaitUntilAsync(() => Task.FromResult(pids.All(pid => !ControllerHarness.ProcessExists(pid))),
            "every worker to exit", TimeSpan.FromSeconds(120));
        await h.WaitUntilAsync(async () => (await h.RunDirLeftoversAsync()).Length == 0, "every FIFO to be unlinked", TimeSpan.FromSeconds(30));
        foreach (var p in paths)
            Assert.That(await h.Xs.ExistsAsync(p), Is.False, p);
        Assert.That(await h.Xs.DirectoryAsync(ControllerHarness.Backend(3, 1)[..^2]), Is.Empty, "no VBD node left under the domain");
        Assert.That(h.Log.Split('\n').Count(l => l.Contains("destroyed")), Is.EqualTo(count));
        Assert.That(h.Log, Does.Not.Contain("[ERR]"));
    }

    [Test]
    public async Task Sigterm_with_50_vbds_closes_them_all_at_once_and_exits_0_as_soon_as_the_workers_answer()
    {
        // A stop deadline far beyond the test's own limit: finishing in time proves the stop ended because every
        // worker answered CLOSE and exited, not because the deadline killed them.
        await using var h = await ControllerHarness.StartAsync((string?)null, "--pid-timeout", "120", "--wait-timeout", "120", "--stop-timeout", "300");
        string image = h.MakeImage("shared.img", 64);
        const int count = 50;
        var paths = new List<string>();
        for (int dev = 1; dev <= count; dev++)
            paths.Add(await h.CreateVbdAsync(4, dev, "aio:" + image, mode: "r"));
        var pids = new List<int>();
        foreach (var p in paths)
            pids.Add(ControllerHarness.ParsePid(await h.WaitForKeyAsync(p + "/tapdisk-pid", TimeSpan.FromSeconds(180))));

        var sw = System.Diagnostics.Stopwatch.StartNew();
        Assert.That(await h.StopControllerAsync(TimeSpan.FromSeconds(60)), Is.Zero, "clean stop");
        TestContext.Out.WriteLine($"SIGTERM with {count} VBDs → exit in {sw.ElapsedMilliseconds} ms");

        Assert.That(pids.Where(ControllerHarness.ProcessExists), Is.Empty, "every worker exited");
        var log = h.Log;
        Assert.That(log, Does.Contain($"stopping: closing {count} VBDs"));
        // The exit is logged by the channel when it still waits for CLOSE_RSP, else as a reaped worker: the order of
        // CLOSE_RSP and SIGCHLD is the scheduler's choice on a loaded machine.
        Assert.That(pids.Count(pid => ControllerHarness.LoggedCleanExit(log, pid)),
            Is.EqualTo(count), "each worker answered CLOSE and exited cleanly; its exit was collected");
        Assert.That(log, Does.Not.Contain("did not close within"), "nobody needed the deadline's SIGKILL");
        Assert.That(await h.RunDirLeftoversAsync(), Is.Empty, "no FIFO, socket or pid file left");
        Assert.That(log, Does.Not.Contain("[ERR]"));
    }
}
