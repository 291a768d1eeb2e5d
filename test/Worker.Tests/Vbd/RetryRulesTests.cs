using BlkTapCtrl.Worker.Interop;
using BlkTapCtrl.Worker.Tests.Support;
using BlkTapCtrl.Worker.Vbd;

namespace BlkTapCtrl.Worker.Tests.Vbd;

/// <summary>§3.5 retry rules and the two CA-29373 rows of §5.</summary>
[TestFixture]
public class RetryRulesTests
{
    [Test]
    public void CA29373_unwedge_one_synchronous_failure_does_not_stop_the_other_new_requests()
    {
        using var h = new EngineHarness();
        h.Factory.Last.SynchronousError = t => t.Sector == 0 ? -Errno.EIO : 0;
        var tags = new List<ulong>();
        for (int i = 0; i < 5; i++) tags.Add(h.Submit(VbdOperation.Read, (ulong)i * 8, 8, i * 4096));
        h.Vbd.ProcessSubmitted(); // one kick with 5 requests

        Assert.That(h.Driver.Seen, Has.Count.EqualTo(5), "all five reached the driver in the same pass");
        Assert.That(h.Vbd.NewCount, Is.Zero, "nothing left behind on new");
        h.Iterate();
        Assert.That(h.Frontend.Answers.Select(a => a.Tag), Is.EquivalentTo(tags.Skip(1)), "the four others answered");
        Assert.That(h.Vbd.FailedCount, Is.EqualTo(1));
        Assert.That(h.Vbd.Flags.HasFlag(VbdFlags.RetryNeeded), Is.True);

        h.Driver.SynchronousError = null;
        h.IterateUntil(() => h.Frontend.Answers.Count == 5, 20, "the failed one is retried and answered");
        Assert.That(h.Frontend.ErrorOf(tags[0]), Is.Zero);
        Assert.That(h.Frontend.AnswerCount.Values, Is.All.EqualTo(1));
    }

    [Test]
    public void CA29373_unwedge_a_synchronous_EBUSY_is_retried_once_per_pass_and_never_spins_the_loop()
    {
        using var h = new EngineHarness();
        h.Driver.SynchronousError = _ => -Errno.EBUSY;
        long start = h.Clock.NowMicroseconds;
        ulong tag = h.SubmitAndProcess(VbdOperation.Read, 0, 8);
        h.Iterate(20);
        // One attempt per issue loop (check_state's and the kick's queue dispatch): never revisited in the same loop.
        Assert.That(h.Driver.Seen, Has.Count.InRange(21, 41));
        Assert.That(h.Clock.NowMicroseconds - start, Is.GreaterThanOrEqualTo(19_000_000),
            "each idle pass waits up to the 1 s retry bound instead of spinning");
        Assert.That(h.Frontend.Answers, Is.Empty);

        h.IterateUntil(() => h.Frontend.Answers.Count == 1, 500);
        Assert.That(h.Frontend.ErrorOf(tag), Is.EqualTo(-Errno.EBUSY));
        long age = h.Clock.NowMicroseconds - start;
        Assert.That(age, Is.InRange(120_000_000L, 122_000_000L), "answered when the request is 120 s old");
    }

    [TestCase(Errno.ENOSPC)]
    [TestCase(Errno.ESTALE)]
    public void CA29373_stop_retrying_ENOSPC_and_ESTALE_are_answered_in_the_same_pass_without_retry(int errno)
    {
        using var h = new EngineHarness();
        h.Driver.SynchronousError = _ => -errno;
        long before = h.Server.Iterations;
        ulong tag = h.SubmitAndProcess(VbdOperation.Write, 16, 8);
        h.Iterate();
        Assert.That(h.Frontend.Answers, Has.Count.EqualTo(1));
        Assert.That(h.Frontend.Answers[0].Iteration, Is.EqualTo(before + 1), "answered in the first loop pass");
        Assert.That(h.Frontend.ErrorOf(tag), Is.EqualTo(-errno));
        Assert.That(h.Vbd.Counters.Retries, Is.Zero);
        Assert.That(h.Driver.Seen, Has.Count.EqualTo(1));
    }

    [Test]
    public void CA29373_stop_retrying_EIO_is_retried_about_once_a_second_and_fails_after_120_s()
    {
        using var h = new EngineHarness();
        h.Driver.SynchronousError = _ => -Errno.EIO;
        long start = h.Clock.NowMicroseconds;
        ulong tag = h.SubmitAndProcess(VbdOperation.Read, 0, 8);
        h.IterateUntil(() => h.Frontend.Answers.Count == 1, 1000);
        Assert.That(h.Frontend.ErrorOf(tag), Is.EqualTo(-Errno.EIO));
        Assert.That(h.Vbd.Counters.Retries, Is.InRange(115, 121), "about one retry per second");
        Assert.That(h.Clock.NowMicroseconds - start, Is.InRange(120_000_000L, 122_000_000L));
        Assert.That(h.Vbd.Counters.Errors, Is.EqualTo(h.Driver.Seen.Count), "every non-EBUSY failure counted");
    }

    [Test]
    public void An_asynchronous_EIO_is_retried_and_then_succeeds_with_the_real_data()
    {
        using var h = new EngineHarness();
        int failures = 2;
        h.Driver.DeferredError = _ => failures > 0 ? -Errno.EIO : 0;
        ulong tag = h.SubmitAndProcess(VbdOperation.Read, 100, 1);
        for (int i = 0; i < 5 && h.Frontend.Answers.Count == 0; i++)
        {
            h.Driver.ReleaseHeld();
            failures--;
            h.Iterate(); // waits the 1 s retry interval, then reissues (held again while failures remain)
        }
        h.IterateUntil(() => h.Frontend.Answers.Count == 1, 20);
        Assert.That(h.Frontend.ErrorOf(tag), Is.Zero, string.Join("\n", h.LogLines));
        Assert.That(BitConverter.ToInt32(h.Memory.Span), Is.EqualTo(100), "sector 100's marker");
        Assert.That(h.Vbd.Counters.Retries, Is.EqualTo(2));
    }
}
