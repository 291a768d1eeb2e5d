using BlkTapCtrl.StateMachines.Vbd;
using T = BlkTapCtrl.StateMachines.Vbd.VbdTrigger;
using V = BlkTapCtrl.StateMachines.Vbd.VbdState;

namespace BlkTapCtrl.StateMachines.Tests;

/// <summary>Every (state, trigger[, argument]) of the VBD machine against the consolidated VBD table of §1.9.</summary>
public class VbdStateMachineTests
{
    // Key: (from, trigger, unpause argument or null). Missing ⇒ refused (the original's −EINVAL / unhandled).
    private static readonly Dictionary<(V, T, bool?), V> Permitted = new();

    static VbdStateMachineTests()
    {
        foreach (var live in new[] { V.Unset, V.Unpaused, V.Pausing, V.Paused })
        {
            Permitted[(live, T.PauseRequested, null)] = V.Pausing;
            Permitted[(live, T.UnpauseRequested, true)] = V.Unpaused;
            Permitted[(live, T.Fatal, null)] = V.Broken;
        }
        Permitted[(V.Pausing, T.PauseCompleted, null)] = V.Paused;
        Permitted[(V.Broken, T.Fatal, null)] = V.Broken;     // ignored: already broken
        Permitted[(V.Dead, T.Fatal, null)] = V.Dead;         // ignored: fenced
        Permitted[(V.Recycled, T.Fatal, null)] = V.Recycled; // ignored: fenced
        foreach (var any in VbdStates.All)
        {
            Permitted[(any, T.BackendRemoved, null)] = V.Dead;  // assignment, any state
            Permitted[(any, T.Recycle, null)] = V.Recycled;     // assignment, any state
        }
    }

    public static IEnumerable<TestCaseData> EveryPair()
    {
        foreach (var s in VbdStates.All)
            foreach (var t in Enum.GetValues<T>())
            {
                if (t == T.UnpauseRequested)
                {
                    yield return new TestCaseData(s, t, true).SetName($"Vbd_{s}_{t}_paramsParsed");
                    yield return new TestCaseData(s, t, false).SetName($"Vbd_{s}_{t}_paramsInvalid");
                }
                else
                    yield return new TestCaseData(s, t, null).SetName($"Vbd_{s}_{t}");
            }
    }

    [TestCaseSource(nameof(EveryPair))]
    public void Trigger_in_state_follows_the_table(V from, T trigger, bool? paramsParsed)
    {
        var unhandled = new List<(V, T)>();
        var machine = new VbdStateMachine((s, t) => unhandled.Add((s, t)), from);

        bool fired = paramsParsed is { } ok ? machine.Unpause(ok) : machine.Fire(trigger);

        if (Permitted.TryGetValue((from, trigger, paramsParsed), out var to))
        {
            Assert.That(fired, Is.True);
            Assert.That(machine.State, Is.EqualTo(to));
            Assert.That(unhandled, Is.Empty);
        }
        else
        {
            Assert.That(fired, Is.False);
            Assert.That(machine.State, Is.EqualTo(from));
            Assert.That(unhandled, Is.EqualTo(new[] { (from, trigger) }));
        }
    }

    [Test]
    public void Fenced_states_are_broken_dead_and_recycled()
    {
        Assert.That(VbdStates.All.Where(s => s.IsFenced()), Is.EquivalentTo(new[] { V.Broken, V.Dead, V.Recycled }));
    }

    [Test]
    public void Recycled_then_removed_goes_dead_CA33664()
    {
        var machine = new VbdStateMachine((_, _) => Assert.Fail("unhandled"), V.Unpaused);
        machine.Fire(T.Recycle);
        machine.Fire(T.BackendRemoved);
        Assert.That(machine.State, Is.EqualTo(V.Dead));
    }
}
