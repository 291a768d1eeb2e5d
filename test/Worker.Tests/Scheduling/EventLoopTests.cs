using System.Text.RegularExpressions;
using BlkTapCtrl.Worker.Scheduling;

namespace BlkTapCtrl.Worker.Tests.Scheduling;

/// <summary>The scheduler of §3.2: the CA-34846 loop rows, the CA-27472 ring, and the §6.4 fixes.</summary>
[TestFixture]
public class EventLoopTests
{
    [Test]
    public void CA34846_recursive_loop_a_nested_iteration_runs_the_outer_pending_event_first_and_only_once()
    {
        using var loop = new EventLoop(new VirtualClock());
        using var a = new ReadablePipe();
        using var b = new ReadablePipe();
        int bRuns = 0;
        bool bRanInsideA = false, insideA = false;
        loop.Register(EventMode.Read, a.ReadFd, 0, (_, _, _) =>
        {
            a.Drain();
            insideA = true;
            loop.WaitForEvents();
            insideA = false;
        });
        loop.Register(EventMode.Read, b.ReadFd, 0, (_, _, _) =>
        {
            b.Drain();
            bRuns++;
            bRanInsideA = insideA;
        });
        a.MakeReadable();
        b.MakeReadable();
        loop.WaitForEvents();
        Assert.That(bRuns, Is.EqualTo(1));
        Assert.That(bRanInsideA, Is.True, "the nested pass ran B (ready in the same wait) instead of waiting");
    }

    [Test]
    public void CA34846_scheduler_glitch_a_timeout_only_loop_never_polls_fd_0()
    {
        using var loop = new EventLoop(new VirtualClock());
        int fired = 0;
        loop.Register(EventMode.Timeout, -1, 2_000_000, (_, modes, _) => { fired++; Assert.That(modes, Is.EqualTo(EventMode.Timeout)); });
        loop.WaitForEvents();
        Assert.That(loop.PolledFds, Is.Empty);
        Assert.That(fired, Is.EqualTo(1));

        using var pipe = new ReadablePipe();
        loop.Register(EventMode.Read, pipe.ReadFd, 0, (_, _, _) => pipe.Drain());
        loop.WaitForEvents();
        Assert.That(loop.PolledFds, Is.EquivalentTo(new[] { pipe.ReadFd }));
        Assert.That(loop.PolledFds, Does.Not.Contain(0));
    }

    [Test]
    public void CA34846_no_restart_flag_an_event_unregistered_in_a_callback_is_not_called_and_freed_after()
    {
        using var loop = new EventLoop(new VirtualClock());
        using var p1 = new ReadablePipe();
        using var p2 = new ReadablePipe();
        int ev2Runs = 0, ev2 = 0;
        loop.Register(EventMode.Read, p1.ReadFd, 0, (_, _, _) => { p1.Drain(); loop.Unregister(ev2); });
        ev2 = loop.Register(EventMode.Read, p2.ReadFd, 0, (_, _, _) => ev2Runs++);
        p1.MakeReadable();
        p2.MakeReadable();
        loop.WaitForEvents();
        Assert.That(ev2Runs, Is.Zero, "ready in the same pass but unregistered before its turn");
        Assert.That(loop.EventCount, Is.EqualTo(1));
        loop.Register(EventMode.Timeout, -1, 0, (_, _, _) => { });
        loop.WaitForEvents();
        Assert.That(loop.PolledFds, Does.Not.Contain(p2.ReadFd), "freed: its fd is no longer polled");
    }

    [Test]
    public void Divergence_6_4_timeouts_fire_on_an_idle_loop_and_masked_events_are_never_dispatched()
    {
        var clock = new VirtualClock();
        using var loop = new EventLoop(clock);
        int timeouts = 0, maskedRuns = 0;
        loop.Register(EventMode.Timeout, -1, 5_000_000, (_, _, _) => timeouts++);
        loop.WaitForEvents(); // nothing ready: the wait ends by timeout and the event still fires
        Assert.That(timeouts, Is.EqualTo(1));
        Assert.That(clock.NowMicroseconds, Is.EqualTo(6_000_000));

        using var pipe = new ReadablePipe();
        int masked = loop.Register(EventMode.Read, pipe.ReadFd, 0, (_, _, _) => maskedRuns++);
        pipe.MakeReadable();
        loop.Mask(masked, true);
        loop.WaitForEvents();
        Assert.That(maskedRuns, Is.Zero);
        loop.Mask(masked, false);
        loop.WaitForEvents();
        Assert.That(maskedRuns, Is.EqualTo(1));
    }

    [Test]
    public void Registration_needs_a_mode_and_id_0_is_a_no_op()
    {
        using var loop = new EventLoop(new VirtualClock());
        Assert.Throws<ArgumentException>(() => loop.Register(EventMode.None, -1, 0, (_, _, _) => { }));
        Assert.Throws<ArgumentException>(() => loop.Register(EventMode.Read, -1, 0, (_, _, _) => { }));
        int id = loop.Register(EventMode.Timeout, -1, 0, (_, _, _) => { });
        Assert.That(id, Is.Not.Zero);
        loop.Unregister(0);
        loop.Mask(0, true);
        Assert.That(loop.EventCount, Is.EqualTo(1));
    }

    [Test]
    public void CA27472_event_ring_after_200_wakeups_the_dump_holds_entries_72_to_199_8_per_line()
    {
        var clock = new VirtualClock(0);
        using var loop = new EventLoop(clock);
        using var pipe = new ReadablePipe();
        loop.Register(EventMode.Timeout, -1, 1_500, (_, _, _) => { });
        loop.Register(EventMode.Read, pipe.ReadFd, 0, (_, _, _) => pipe.Drain());
        for (int i = 0; i < 200; i++)
        {
            if (i == 199) pipe.MakeReadable();
            loop.WaitForEvents();
        }
        var dump = loop.Wakeups.Dump(["index: ipc rfd:8 wfd:10 aio:0 other:0"]);
        Assert.That(dump[0], Is.EqualTo("index: ipc rfd:8 wfd:10 aio:0 other:0"));
        var lines = dump.Skip(1).ToList();
        Assert.That(lines, Has.Count.EqualTo(16));
        for (int i = 0; i < 16; i++)
        {
            Assert.That(lines[i], Does.StartWith($"[{72 + i * 8}/8]:"));
            Assert.That(Regex.Matches(lines[i], @" \d+\.\d{6}:[0-9a-f]+").Count, Is.EqualTo(8), lines[i]);
        }
        Assert.That(lines[0], Does.StartWith("[72/8]: 0.109500:0 0.001500:0"), "first absolute, then deltas to the previous");
        Assert.That(lines[^1], Does.EndWith($" 0.000000:{WakeupRing.MaskOf(pipe.ReadFd):x}"), "the last wake-up saw the pipe's fd");
    }
}
