namespace BlkTapCtrl.Integration.Tests.Controller;

/// <summary>The original's holes (reference §6 item 6: stuck wait states) closed, each shown with real processes.</summary>
[TestFixture]
public class ControllerSection6Tests
{
    [Test]
    public async Task Section6_item6_ERROR_reply_leaves_the_channel_broken_and_closed_not_waiting()
    {
        await using var h = await ControllerHarness.StartAsync();
        string p = await h.CreateVbdAsync(1, 5, "aio:" + h.Dir["missing.img"]); // tapdisk answers OPEN with ERROR

        var error = await h.WaitForKeyAsync(p + "/tapdisk-error");
        Assert.That(error, Is.EqualTo("received unexpected message error in state 5"));
        await h.WaitUntilAsync(async () => (await h.RunDirLeftoversAsync()).Length == 0, "FIFOs closed and unlinked");
        await h.WaitForLogAsync("reaped tapdisk pid", TimeSpan.FromSeconds(10));
        Assert.That(await h.ReadAsync(p + "/tapdisk-pid"), Is.Null);

        // Broken and closed: a removal now destroys the channel at once (it is not stuck in wait-open).
        await h.ToolstackRemoveAsync(p);
        await h.WaitForLogAsync("destroyed", TimeSpan.FromSeconds(10));
    }

    [Test]
    public async Task Section6_every_wait_has_a_deadline_a_worker_that_never_answers_PID_is_killed_and_reaped()
    {
        await using var h = await ControllerHarness.StartAsync(h => h.Script("silent-tapdisk", "exec sleep 60"), "--pid-timeout", "1");
        string p = await h.CreateVbdAsync(1, 6, "aio:/x.img");

        var error = await h.WaitForKeyAsync(p + "/tapdisk-error", TimeSpan.FromSeconds(30));
        Assert.That(error, Does.StartWith("timed out after 1 s waiting in state 3"));
        await h.WaitForLogAsync("reaped tapdisk pid", TimeSpan.FromSeconds(10));
        Assert.That(await h.RunDirLeftoversAsync(), Is.Empty);
    }
}
