using BlkTapCtrl.Worker.Scheduling;

namespace BlkTapCtrl.Worker.Tests.Scheduling;

/// <summary>The loop's spin-before-sleep window: grows while events arrive soon after it, never spins when idle.</summary>
[TestFixture]
public class AdaptivePollingTests
{
    [Test]
    public void The_window_starts_closed_grows_by_doubling_up_to_the_maximum_while_events_come_soon()
    {
        var p = new AdaptivePolling(50);
        Assert.That(p.WindowMicroseconds, Is.Zero, "a fresh loop never spins");
        var seen = new List<long>();
        for (int i = 0; i < 6; i++)
        {
            p.Update(waitedMicroseconds: 45, foundWhilePolling: false); // the event came 45 µs into the sleep
            seen.Add(p.WindowMicroseconds);
        }
        Assert.That(seen, Is.EqualTo(new long[] { 4, 8, 16, 32, 50, 50 }));
    }

    [Test]
    public void A_wait_longer_than_the_maximum_closes_the_window_and_a_catch_while_polling_keeps_it()
    {
        var p = new AdaptivePolling(50);
        p.Update(10, false);
        p.Update(10, false);
        Assert.That(p.WindowMicroseconds, Is.EqualTo(8));
        p.Update(3, foundWhilePolling: true);
        Assert.That(p.WindowMicroseconds, Is.EqualTo(8), "polling worked: keep the window");
        p.Update(5, false);
        Assert.That(p.WindowMicroseconds, Is.EqualTo(8), "an event within the window needs no longer spin");
        p.Update(51, false);
        Assert.That(p.WindowMicroseconds, Is.Zero, "an idle gap: spinning would only burn CPU");
    }

    [Test]
    public void A_maximum_of_0_never_polls()
    {
        var p = new AdaptivePolling(0);
        for (int i = 0; i < 10; i++) p.Update(1, false);
        Assert.That(p.WindowMicroseconds, Is.Zero);
    }

    /// <summary>
    /// A real loop fed by a thread that answers each drain a few µs later (as a client at queue depth
    /// does): some events are caught while spinning; once the feeder stops, a timer-only wait sleeps and
    /// the window closes again.
    /// </summary>
    [Test]
    public void A_busy_loop_catches_events_while_polling_and_an_idle_one_sleeps()
    {
        using var loop = new EventLoop(MonotonicClock.Instance, pollMaxMicroseconds: 200);
        using var pipe = new ReadablePipe();
        int drained = 0, stop = 0;
        loop.Register(EventMode.Read, pipe.ReadFd, 0, (_, _, _) => { pipe.Drain(); Interlocked.Increment(ref drained); });
        var feeder = new Thread(() =>
        {
            int answered = 0;
            while (Volatile.Read(ref stop) == 0)
            {
                if (Volatile.Read(ref drained) == answered) { Thread.SpinWait(20); continue; }
                answered = Volatile.Read(ref drained);
                var until = System.Diagnostics.Stopwatch.GetTimestamp() + System.Diagnostics.Stopwatch.Frequency / 100_000; // ~10 µs
                while (System.Diagnostics.Stopwatch.GetTimestamp() < until) Thread.SpinWait(1);
                pipe.MakeReadable();
            }
        }) { IsBackground = true };
        pipe.MakeReadable();
        feeder.Start();
        // Both threads must be on a CPU at once for a catch; on a loaded CI machine that can take many
        // passes, so run until the first catch (typically within the first thousand passes) or 20 s.
        var deadline = DateTime.UtcNow.AddSeconds(20);
        for (int i = 0; loop.PolledWakeups == 0 && (i < 3000 || DateTime.UtcNow < deadline); i++) loop.WaitForEvents();
        Volatile.Write(ref stop, 1);
        feeder.Join();
        Assert.That(loop.PolledWakeups, Is.GreaterThan(0), "events that came within the window were caught by the spin");

        bool fired = false;
        loop.Register(EventMode.Timeout, -1, 20_000, (_, _, _) => fired = true);
        long blocked = loop.BlockedWaits;
        while (!fired) loop.WaitForEvents(); // drains a last byte, if any, then sleeps until the timer
        Assert.That(loop.BlockedWaits, Is.GreaterThan(blocked), "an idle loop sleeps");
        Assert.That(loop.Polling.WindowMicroseconds, Is.Zero, "and a 20 ms wait closed the window");
    }
}
