using BlkTapCtrl.StateMachines.Shutdown;
using S = BlkTapCtrl.StateMachines.Shutdown.ShutdownState;

namespace BlkTapCtrl.StateMachines.Tests;

/// <summary>The shutdown state of §1.7 for every starting state, force flag and request value.</summary>
public class ShutdownStateMachineTests
{
    public static IEnumerable<TestCaseData> EveryRequest()
    {
        string?[] requests = [null, "start", "shutdown-normal", "shutdown-force", "reboot", "", "Start"];
        foreach (var from in new[] { S.Up, S.Down })
            foreach (var force in new[] { false, true })
                foreach (var request in requests)
                    yield return new TestCaseData(from, force, request).SetName($"Shutdown_{from}_force{force}_{request ?? "absent"}");
    }

    [TestCaseSource(nameof(EveryRequest))]
    public void Request_sets_state_and_force_flag(S from, bool force, string? request)
    {
        var unhandled = 0;
        var machine = new ShutdownStateMachine((_, _) => unhandled++, from);
        if (force)
        {
            // Reach the starting point through the machine itself: shutdown-force, then start if Up.
            machine.Apply("shutdown-force");
            if (from == S.Up) machine.Apply("start");
        }
        else if (from == S.Up)
            machine.Apply("start");
        Assert.That((machine.State, machine.Force), Is.EqualTo((from, force)));

        bool accepted = machine.Apply(request);

        (S State, bool Force)? expected = request switch
        {
            null => (S.Down, force),                 // absent ⇒ DOWN, flag kept (device reset after force still forces)
            "start" => (S.Up, force),
            "shutdown-normal" => (S.Down, false),
            "shutdown-force" => (S.Down, true),
            _ => null,                               // other ⇒ −EINVAL, unchanged
        };
        if (expected is { } e)
        {
            Assert.That(accepted, Is.True);
            Assert.That((machine.State, machine.Force), Is.EqualTo(e));
        }
        else
        {
            Assert.That(accepted, Is.False);
            Assert.That((machine.State, machine.Force), Is.EqualTo((from, force)));
        }
        Assert.That(unhandled, Is.Zero);
    }
}
