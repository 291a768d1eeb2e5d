using BlkTapCtrl.StateMachines.Channel;
using C = BlkTapCtrl.StateMachines.Channel.ChannelState;
using T = BlkTapCtrl.StateMachines.Channel.ChannelTrigger;

namespace BlkTapCtrl.StateMachines.Tests;

/// <summary>
/// Every (state, trigger) pair of the channel machine: the permitted ones reach the §1.9 target, every
/// other one reaches the unhandled callback (the supervisor's fatal error) and leaves the state alone.
/// </summary>
public class ChannelStateMachineTests
{
    // The consolidated channel transitions of §1.9 (plus the §6 fault → closed). Triggers with an argument
    // are listed by their fire method; "adopted" Pid is the pid state entered through a shared worker.
    private static readonly Dictionary<(C, T), C> Permitted = new()
    {
        [(C.Dead, T.ChildExited)] = C.Dead, // ignored: the worker was already let go
        [(C.Dead, T.Fault)] = C.Dead,       // ignored: nothing left to close
        [(C.Closed, T.Fault)] = C.Closed,
        [(C.Closed, T.ChildExited)] = C.Dead,
        [(C.Launched, T.PidSent)] = C.WaitPid,
        [(C.WaitPid, T.PidResponse)] = C.Pid,
        [(C.Pid, T.OpenSent)] = C.WaitOpen,
        [(C.Pid, T.CloseSent)] = C.WaitClose,
        [(C.WaitOpen, T.OpenResponse)] = C.Running,
        [(C.Running, T.PauseSent)] = C.WaitPause,
        [(C.Running, T.CloseSent)] = C.WaitClose,
        [(C.WaitPause, T.PauseResponse)] = C.Paused,
        [(C.Paused, T.ResumeSent)] = C.WaitResume,
        [(C.Paused, T.CloseSent)] = C.WaitClose,
        [(C.WaitResume, T.ResumeResponse)] = C.Running,
        [(C.WaitClose, T.CloseResponse)] = C.Closed,
    };

    static ChannelStateMachineTests()
    {
        foreach (var s in ChannelStates.All.Where(s => s.IsIpcOpen()))
        {
            Permitted[(s, T.ChildExited)] = C.Dead;
            Permitted[(s, T.Fault)] = C.Closed; // §6 item 6: never stuck in a wait state
        }
    }

    public static IEnumerable<TestCaseData> EveryPair() =>
        from s in ChannelStates.All
        from t in Enum.GetValues<T>()
        where t is not T.Connect and not T.Reattach
        select new TestCaseData(s, t).SetName($"Channel_{s}_{t}");

    [TestCaseSource(nameof(EveryPair))]
    public void Trigger_in_state_follows_the_table(C from, T trigger)
    {
        var unhandled = new List<(C, T)>();
        var machine = new ChannelStateMachine((s, t) => unhandled.Add((s, t)), from);

        bool fired = machine.Fire(trigger);

        if (Permitted.TryGetValue((from, trigger), out var to))
        {
            Assert.That(fired, Is.True);
            Assert.That(machine.State, Is.EqualTo(to));
            Assert.That(unhandled, Is.Empty);
        }
        else
        {
            Assert.That(fired, Is.False, "not permitted: reported, not thrown");
            Assert.That(machine.State, Is.EqualTo(from), "an unexpected trigger leaves the state unchanged");
            Assert.That(unhandled, Is.EqualTo(new[] { (from, trigger) }));
        }
    }

    [TestCase(C.Dead, false, C.Launched)]
    [TestCase(C.Dead, true, C.Pid)]
    [TestCase(C.Closed, false, C.Launched)]
    [TestCase(C.Closed, true, C.Pid)]
    public void Connect_resurrects_dead_and_closed_channels_CA32254(C from, bool sharedPeer, C to)
    {
        var machine = new ChannelStateMachine((_, _) => Assert.Fail("unhandled"), from);
        Assert.That(machine.Connect(sharedPeer), Is.True);
        Assert.That(machine.State, Is.EqualTo(to));
    }

    public static IEnumerable<TestCaseData> NotResting() =>
        ChannelStates.All.Where(s => s.IsIpcOpen()).SelectMany(s => new[] { new TestCaseData(s, false), new TestCaseData(s, true) });

    [TestCaseSource(nameof(NotResting))]
    public void Connect_is_refused_while_a_worker_is_attached(C from, bool sharedPeer)
    {
        var unhandled = new List<(C, T)>();
        var machine = new ChannelStateMachine((s, t) => unhandled.Add((s, t)), from);
        Assert.That(machine.Connect(sharedPeer), Is.False);
        Assert.That(machine.State, Is.EqualTo(from));
        Assert.That(unhandled, Is.EqualTo(new[] { (from, T.Connect) }));
    }

    [TestCase(false, C.Running)]
    [TestCase(true, C.Paused)]
    public void Reattach_takes_a_dead_channel_to_the_state_of_the_running_worker(bool workerPaused, C to)
    {
        var machine = new ChannelStateMachine((_, _) => Assert.Fail("unhandled"));
        Assert.That(machine.Reattach(workerPaused), Is.True);
        Assert.That(machine.State, Is.EqualTo(to));
    }

    public static IEnumerable<TestCaseData> NotDead() =>
        ChannelStates.All.Where(s => s != C.Dead).SelectMany(s => new[] { new TestCaseData(s, false), new TestCaseData(s, true) });

    [TestCaseSource(nameof(NotDead))]
    public void Reattach_is_refused_unless_the_channel_never_talked(C from, bool workerPaused)
    {
        var unhandled = new List<(C, T)>();
        var machine = new ChannelStateMachine((s, t) => unhandled.Add((s, t)), from);
        Assert.That(machine.Reattach(workerPaused), Is.False);
        Assert.That(machine.State, Is.EqualTo(from));
        Assert.That(unhandled, Is.EqualTo(new[] { (from, T.Reattach) }));
    }

    [Test]
    public void Adopted_shared_worker_is_sent_PID_before_OPEN()
    {
        var unhandled = new List<(C, T)>();
        var machine = new ChannelStateMachine((s, t) => unhandled.Add((s, t)));
        machine.Connect(sharedPeerFound: true);
        Assert.That(machine.Fire(T.OpenSent), Is.False, "guard: the adopted worker has not seen our cookie");
        Assert.That(machine.Fire(T.PidSent), Is.True);
        Assert.That(machine.State, Is.EqualTo(C.WaitPid));
        machine.Fire(T.PidResponse);
        Assert.That(machine.Fire(T.PidSent), Is.False, "guard: PID is sent once");
        Assert.That(machine.Fire(T.OpenSent), Is.True);
        Assert.That(unhandled, Is.EqualTo(new[] { (C.Pid, T.OpenSent), (C.Pid, T.PidSent) }));
    }

    [Test]
    public void Normal_life_of_a_channel()
    {
        var machine = new ChannelStateMachine((s, t) => Assert.Fail($"unhandled {t} in {s}"));
        machine.Connect(false);
        foreach (var t in new[] { T.PidSent, T.PidResponse, T.OpenSent, T.OpenResponse, T.PauseSent, T.PauseResponse,
                     T.ResumeSent, T.ResumeResponse, T.CloseSent, T.CloseResponse, T.ChildExited })
            Assert.That(machine.Fire(t), Is.True, t.ToString());
        Assert.That(machine.State, Is.EqualTo(C.Dead));
    }

    [Test]
    public void State_predicates_match_reference_1_7()
    {
        Assert.That(ChannelStates.All.Where(s => s.IsIpcIdle()),
            Is.EquivalentTo(new[] { C.Launched, C.Pid, C.Running, C.Paused }));
        Assert.That(ChannelStates.All.Where(s => !s.IsIpcOpen()), Is.EquivalentTo(new[] { C.Dead, C.Closed }));
        Assert.That(ChannelStates.All.Where(s => s.IsWaiting()),
            Is.EquivalentTo(new[] { C.WaitPid, C.WaitOpen, C.WaitPause, C.WaitResume, C.WaitClose }));
        Assert.That(ChannelStates.All.Select(s => (int)s), Is.EqualTo(Enumerable.Range(1, 11)));
    }
}
