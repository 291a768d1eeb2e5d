using BlkTapCtrl.StateMachines.Drive;
using C = BlkTapCtrl.StateMachines.Channel.ChannelState;
using D = BlkTapCtrl.StateMachines.Drive.DriveStep;
using S = BlkTapCtrl.StateMachines.Shutdown.ShutdownState;
using V = BlkTapCtrl.StateMachines.Vbd.VbdState;

namespace BlkTapCtrl.StateMachines.Tests;

/// <summary>Every cell of the §1.8 drive table, the target mapping and the post-processing.</summary>
public class VbdDriveFunctionTests
{
    [TestCase(V.Unpaused, S.Down, C.Closed)]
    [TestCase(V.Pausing, S.Down, C.Closed)]
    [TestCase(V.Paused, S.Down, C.Closed)]
    [TestCase(V.Broken, S.Down, C.Closed)]
    [TestCase(V.Dead, S.Down, C.Closed)]
    [TestCase(V.Recycled, S.Down, C.Closed)]
    [TestCase(V.Unset, S.Down, C.Closed)]
    [TestCase(V.Unpaused, S.Up, C.Running)]
    [TestCase(V.Pausing, S.Up, C.Paused)]
    [TestCase(V.Paused, S.Up, C.Paused)]
    [TestCase(V.Broken, S.Up, C.Closed)]
    [TestCase(V.Dead, S.Up, C.Closed)]
    [TestCase(V.Recycled, S.Up, C.Closed)]
    [TestCase(V.Unset, S.Up, C.Closed)]
    public void Target_follows_vbd_and_shutdown_state(V vbd, S shutdown, C target) =>
        Assert.That(VbdDriveFunction.TargetFor(vbd, shutdown), Is.EqualTo(target));

    // The §1.8 table; the diagonal is "already there".
    private static readonly Dictionary<C, (D Running, D Paused, D Closed)> Table = new()
    {
        [C.Dead] = (D.Connect, D.Reached, D.Reached),
        [C.Launched] = (D.InProgress, D.LaunchedCannotPause, D.InProgress),
        [C.WaitPid] = (D.InProgress, D.InProgress, D.InProgress),
        [C.Pid] = (D.SendOpen, D.Reached, D.SendClose),
        [C.WaitOpen] = (D.InProgress, D.InProgress, D.InProgress),
        [C.Running] = (D.Reached, D.SendPause, D.SendClose),
        [C.WaitPause] = (D.InProgress, D.InProgress, D.InProgress),
        [C.Paused] = (D.SendResume, D.Reached, D.SendClose),
        [C.WaitResume] = (D.InProgress, D.InProgress, D.InProgress),
        [C.WaitClose] = (D.InProgress, D.InProgress, D.InProgress),
        [C.Closed] = (D.Connect, D.Reached, D.Reached),
    };

    public static IEnumerable<TestCaseData> EveryCell() =>
        from c in Enum.GetValues<C>()
        from target in new[] { C.Running, C.Paused, C.Closed }
        from force in new[] { false, true }
        select new TestCaseData(c, target, force).SetName($"Drive_{c}_to_{target}{(force ? "_force" : "")}");

    [TestCaseSource(nameof(EveryCell))]
    public void Step_follows_the_drive_table(C current, C target, bool force)
    {
        var row = Table[current];
        var expected = target switch { C.Running => row.Running, C.Paused => row.Paused, _ => row.Closed };
        if (expected == D.SendClose && force)
            expected = D.SendForceShutdown; // FORCE_SHUTDOWN iff shutdown_force
        Assert.That(VbdDriveFunction.StepTowards(current, target, force), Is.EqualTo(expected));
    }

    [TestCase(V.Pausing, PostProcess.CompletePause)]
    [TestCase(V.Recycled, PostProcess.ReprobeThenDestroy)]
    [TestCase(V.Dead, PostProcess.Destroy)]
    [TestCase(V.Unpaused, PostProcess.None)]
    [TestCase(V.Paused, PostProcess.None)]
    [TestCase(V.Broken, PostProcess.None)]
    [TestCase(V.Unset, PostProcess.None)]
    public void Post_processing_follows_vbd_state(V vbd, PostProcess expected) =>
        Assert.That(VbdDriveFunction.AfterReaching(vbd), Is.EqualTo(expected));

    [Test]
    public void Paused_vbd_without_a_worker_counts_as_paused_and_launches_nothing_CA32254()
    {
        var plan = VbdDriveFunction.Plan(C.Dead, V.Pausing, S.Up, false);
        Assert.That(plan, Is.EqualTo(new DrivePlan(C.Paused, D.Reached, PostProcess.CompletePause)));
        // Unpause then launches one.
        Assert.That(VbdDriveFunction.Plan(C.Dead, V.Unpaused, S.Up, false).Step, Is.EqualTo(D.Connect));
    }

    [Test]
    public void Post_processing_waits_until_the_target_is_reached()
    {
        var plan = VbdDriveFunction.Plan(C.Running, V.Dead, S.Up, true);
        Assert.That(plan, Is.EqualTo(new DrivePlan(C.Closed, D.SendForceShutdown, PostProcess.None)));
        Assert.That(VbdDriveFunction.Plan(C.Closed, V.Dead, S.Up, true).PostProcess, Is.EqualTo(PostProcess.Destroy));
    }

    [Test]
    public void An_unclean_exit_leaves_the_vbd_broken_and_does_not_relaunch_CA26523()
    {
        Assert.That(VbdDriveFunction.Plan(C.Dead, V.Broken, S.Up, false).Step, Is.EqualTo(D.Reached));
        // A clean exit while up and unpaused relaunches.
        Assert.That(VbdDriveFunction.Plan(C.Dead, V.Unpaused, S.Up, false).Step, Is.EqualTo(D.Connect));
    }
}
