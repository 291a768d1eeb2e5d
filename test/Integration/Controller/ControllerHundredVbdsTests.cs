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
}
