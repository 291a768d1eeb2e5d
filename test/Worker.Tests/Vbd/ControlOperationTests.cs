using BlkTapCtrl.Protocol.Control;
using BlkTapCtrl.Worker.Interop;
using BlkTapCtrl.Worker.Tests.Support;
using BlkTapCtrl.Worker.Vbd;

namespace BlkTapCtrl.Worker.Tests.Vbd;

/// <summary>Pause, resume, close and force shutdown of §3.5, including CA-39535.</summary>
[TestFixture]
public class ControlOperationTests
{
    [Test]
    public void CA39535_force_shutdown_with_in_flight_IO_ends_with_one_CLOSE_RSP()
    {
        using var h = new EngineHarness();
        h.Driver.Hold = true;
        ulong a = h.SubmitAndProcess(VbdOperation.Write, 0, 8);
        ulong b = h.SubmitAndProcess(VbdOperation.Read, 8, 8, 4096);
        Assert.That(h.Driver.HeldCount, Is.EqualTo(2));
        h.Vbd.ForceShutdown();
        ulong c = h.SubmitAndProcess(VbdOperation.Read, 16, 8, 8192); // queued after the kill: fails at once
        h.Iterate(3);
        Assert.That(h.CloseReplies, Is.Zero, "waits for in-flight I/O");
        Assert.That(h.Frontend.ErrorOf(c), Is.EqualTo(-Errno.EIO));

        var driver = h.Driver;
        driver.ReleaseHeld();
        h.Iterate(5);
        Assert.That(h.CloseReplies, Is.EqualTo(1), "exactly one CLOSE_RSP");
        Assert.That(h.Frontend.ErrorOf(a), Is.Zero);
        Assert.That(h.Frontend.ErrorOf(b), Is.Zero);
        Assert.That(h.Frontend.AnswerCount.Values, Is.All.EqualTo(1));
        Assert.That(h.Frontend.Closed, Is.True);
        Assert.That(h.Server.Vbds, Is.Empty);
        Assert.That(driver.Disposed, Is.True);
        Assert.That(h.Server.Running, Is.False, "the worker stops after its last VBD");
    }

    [Test]
    public void Close_drains_pending_requests_then_replies_once()
    {
        using var h = new EngineHarness();
        h.Driver.Hold = true;
        var tags = Enumerable.Range(0, 4).Select(i => h.SubmitAndProcess(VbdOperation.Read, (ulong)i * 8, 8, i * 4096)).ToList();
        Assert.That(h.Vbd.Close(), Is.EqualTo(-Errno.EAGAIN));
        h.Iterate(3);
        Assert.That(h.CloseReplies, Is.Zero);
        h.Driver.ReleaseHeld();
        h.Iterate(3);
        Assert.That(h.CloseReplies, Is.EqualTo(1));
        Assert.That(h.Frontend.Answers.Select(x => (x.Tag, x.Error)), Is.EquivalentTo(tags.Select(t => (t, 0))));
        Assert.That(h.Vbd.Close(), Is.EqualTo(-Errno.EINVAL), "a closed VBD does not close twice");
    }

    [Test]
    public void Pause_quiesces_before_replying_and_requests_wait_until_resume()
    {
        using var h = new EngineHarness();
        h.Driver.Hold = true;
        ulong a = h.SubmitAndProcess(VbdOperation.Read, 0, 8);
        Assert.That(h.Vbd.Pause(), Is.Zero);
        h.Iterate(3);
        Assert.That(h.PauseReplies, Is.Zero, "PAUSE_RSP only once in-flight I/O is done");
        ulong b = h.SubmitAndProcess(VbdOperation.Read, 8, 8, 4096);
        var first = h.Driver;
        first.ReleaseHeld();
        h.Iterate(2);
        Assert.That(h.PauseReplies, Is.EqualTo(1));
        Assert.That(first.Disposed, Is.True, "images closed while paused");
        Assert.That(h.Frontend.ErrorOf(a), Is.Zero);
        Assert.That(h.Frontend.ErrorOf(b), Is.Null, "waits on new while paused (no timeout)");
        h.Clock.Advance(200_000_000);
        h.Iterate(2);
        Assert.That(h.Frontend.ErrorOf(b), Is.Null, "new requests have no timeout");

        Assert.That(h.Vbd.Resume(new VbdOpenParameters(h.ImagePath, DriverType.Aio)), Is.Zero);
        Assert.That(h.Vbd.Resume(new VbdOpenParameters(h.ImagePath, DriverType.Aio)), Is.EqualTo(-Errno.EINVAL), "not paused");
        h.Iterate(2);
        Assert.That(h.Frontend.ErrorOf(b), Is.Zero);
        Assert.That(BitConverter.ToInt32(h.Memory.Span[4096..]), Is.EqualTo(8));
    }

    [Test]
    public void Resume_with_a_missing_image_fails_after_10_attempts_a_second_apart()
    {
        using var h = new EngineHarness();
        h.Vbd.Pause();
        h.Iterate();
        Assert.That(h.PauseReplies, Is.EqualTo(1));
        long before = h.Clock.NowMicroseconds;
        Assert.That(h.Vbd.Resume(new VbdOpenParameters(h.Dir["nope.img"], DriverType.Aio)), Is.EqualTo(-Errno.ENOENT));
        Assert.That(h.Clock.NowMicroseconds - before, Is.EqualTo(9_000_000), "10 attempts, 1 s apart");
        Assert.That(h.Vbd.Flags.HasFlag(VbdFlags.Paused), Is.True);
    }

    [Test]
    public void Closing_a_paused_VBD_answers_its_queued_requests_instead_of_dropping_them()
    {
        using var h = new EngineHarness();
        h.Vbd.Pause();
        h.Iterate();
        ulong a = h.SubmitAndProcess(VbdOperation.Read, 0, 8);
        Assert.That(h.Vbd.Close(), Is.Zero);
        Assert.That(h.Frontend.ErrorOf(a), Is.EqualTo(-Errno.EIO));
        Assert.That(h.CloseReplies, Is.EqualTo(1));
    }

    [Test]
    public void Writes_to_a_read_only_VBD_and_requests_beyond_the_end_fail_with_EINVAL()
    {
        using var h = new EngineHarness(open: false);
        Assert.That(h.Vbd.Open(new VbdOpenParameters(h.ImagePath, DriverType.Aio, Images.ImageOpenFlags.ReadOnly)), Is.Zero);
        h.Vbd.Attach(h.Frontend);
        Assert.That(h.Vbd.ReadOnly, Is.True);
        ulong w = h.SubmitAndProcess(VbdOperation.Write, 0, 8);
        ulong beyond = h.SubmitAndProcess(VbdOperation.Read, 4090, 8);
        ulong ok = h.SubmitAndProcess(VbdOperation.Read, 4088, 8);
        h.Iterate();
        Assert.That(h.Frontend.ErrorOf(w), Is.EqualTo(-Errno.EINVAL));
        Assert.That(h.Frontend.ErrorOf(beyond), Is.EqualTo(-Errno.EINVAL));
        Assert.That(h.Frontend.ErrorOf(ok), Is.Zero);
    }

    [Test]
    public void The_watchdog_warns_after_10_s_without_progress_and_dumps_once()
    {
        using var h = new EngineHarness();
        h.Driver.Hold = true;
        h.SubmitAndProcess(VbdOperation.Read, 0, 8);
        h.IterateUntil(() => h.Clock.NowMicroseconds > 25_000_000, 100);
        var warnings = h.LogLines.Where(l => l.Contains("watchdog timeout: pending requests idle for")).ToList();
        Assert.That(warnings, Is.Not.Empty);
        Assert.That(warnings[0], Does.Contain("idle for 10 seconds"));
        Assert.That(h.LogLines.Count(l => l.Contains("tapdisk_server_debug: VBD 1:")), Is.EqualTo(1), "debug dump once per VBD");
        h.Driver.ReleaseHeld();
        h.Iterate();
    }
}
