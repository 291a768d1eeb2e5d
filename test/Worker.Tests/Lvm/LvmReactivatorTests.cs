using BlkTapCtrl.Protocol.Control;
using BlkTapCtrl.Testing;
using BlkTapCtrl.Vhd.Format;
using BlkTapCtrl.Vhd.Operations;
using BlkTapCtrl.Worker.Interop;
using BlkTapCtrl.Worker.Logging;
using BlkTapCtrl.Worker.Lvm;
using BlkTapCtrl.Worker.Scheduling;
using BlkTapCtrl.Worker.Vbd;

namespace BlkTapCtrl.Worker.Tests.Lvm;

/// <summary>
/// LVM reactivation (reference §3.9, §5 CA-40171) against a real fake <c>lvchange</c> executable and real VHD
/// files standing in for the logical volumes: device-mapper names in a "mapper" directory, the VBD's
/// <c>/dev/VG_…/VHD-…</c> path as a symlink in a "vg" directory, as on a XenServer LVM SR.
/// </summary>
[TestFixture]
public class LvmReactivatorTests
{
    private sealed class LvmChain : IDisposable
    {
        public readonly TempDir Dir = new("lvm");
        public readonly FakeLvchange Lvchange;
        public readonly VirtualClock Clock = new();
        public readonly List<string> Log = new();
        public readonly string Mapper, Leaf, LeafVolume, MidVolume, BaseVolume;
        public readonly Guid MidUuid = Guid.NewGuid();

        public const string LeafName = "VG_XenStorage--sr-VHD--leaf", MidName = "VG_XenStorage--sr-VHD--mid", BaseName = "VG_XenStorage--sr-VHD--base";

        public LvmChain()
        {
            Lvchange = new FakeLvchange(Dir.Path);
            Mapper = Directory.CreateDirectory(Dir["mapper"]).FullName;
            BaseVolume = Path.Combine(Mapper, BaseName);
            MidVolume = Path.Combine(Mapper, MidName);
            LeafVolume = Path.Combine(Mapper, LeafName);
            VhdCreator.Create(BaseVolume, new VhdCreateOptions { SizeBytes = 8 << 20 });
            VhdCreator.Create(MidVolume, new VhdCreateOptions { Type = DiskType.Differencing, ParentPath = BaseVolume, Uuid = MidUuid });
            VhdCreator.Create(LeafVolume, new VhdCreateOptions { Type = DiskType.Differencing, ParentPath = MidVolume });
            Directory.CreateDirectory(Dir["vg"]);
            Leaf = Path.Combine(Dir["vg"], "VHD-leaf");
            File.CreateSymbolicLink(Leaf, LeafVolume);
        }

        /// <summary>A middle volume over the same base but with another uuid: what a half-done reparent leaves.</summary>
        public string MakeWrongMiddle()
        {
            string wrong = Path.Combine(Mapper, "wrong-mid");
            VhdCreator.Create(wrong, new VhdCreateOptions { Type = DiskType.Differencing, ParentPath = BaseVolume });
            return wrong;
        }

        public LvmReactivator Reactivator() => new(
            new LvmOptions { Lvchange = Lvchange.Executable, DeviceMapperDirectory = Mapper },
            new WorkerLog { Sink = (_, line) => Log.Add(line.ToString()) }, Clock);

        public VbdOpenParameters Lvm(string path) => new(path, DriverType.Vhd, Storage: StorageType.Lvm);

        public static string Activate(string volume) => "-ay --refresh " + volume;

        public void Dispose() => Dir.Dispose();
    }

    [Test]
    public void CA40171_walk_activates_the_leaf_then_each_parent_from_its_MACX_locator()
    {
        using var c = new LvmChain();
        var r = c.Reactivator();
        Assert.That(r.Reactivate(c.Lvm(c.Leaf)), Is.Zero, string.Join("\n", c.Log));
        Assert.That(c.Lvchange.Calls, Is.EqualTo(new[]
        {
            LvmChain.Activate(c.Leaf), LvmChain.Activate(c.MidVolume), LvmChain.Activate(c.BaseVolume),
        }));
        Assert.That(r.Walks, Is.EqualTo(1));
        Assert.That(c.Log, Has.Some.Contains("reactivated"));
    }

    [Test]
    public void CA40171_a_parent_whose_uuid_is_not_the_childs_record_fails_after_ten_walks()
    {
        using var c = new LvmChain();
        File.Move(c.MakeWrongMiddle(), c.MidVolume, overwrite: true);
        var r = c.Reactivator();
        long start = c.Clock.NowMicroseconds;

        Assert.That(r.Reactivate(c.Lvm(c.Leaf)), Is.EqualTo(-Errno.EINVAL));

        Assert.That(r.Walks, Is.EqualTo(LvmOptions.DefaultWalkAttempts));
        Assert.That(c.Clock.NowMicroseconds - start, Is.EqualTo(9 * 1_000_000L), "nine 1 s pauses between ten walks");
        var oneWalk = new[] { LvmChain.Activate(c.Leaf), LvmChain.Activate(c.MidVolume) };
        Assert.That(c.Lvchange.Calls, Is.EqualTo(Enumerable.Repeat(oneWalk, 10).SelectMany(w => w)),
            "every walk restarts at the leaf and never activates what the wrong middle points to");
        Assert.That(c.Log.Last(), Does.StartWith("ERROR: errno 22 at tapdisk_vbd_reactivate_volumes")
            .And.Contains("parent uuid mismatch").And.Contains(c.MidUuid.ToString()));
    }

    [Test]
    public void CA40171_a_volume_swapped_during_the_walk_is_caught_and_the_walk_restarts_from_the_leaf()
    {
        using var c = new LvmChain();
        string good = Path.Combine(c.Dir.Path, "good-mid");
        File.Move(c.MidVolume, good);
        File.Move(c.MakeWrongMiddle(), c.MidVolume);
        c.Lvchange.SwapOnCall(LvmChain.MidName, 2, good); // the master finishes its rewrite before our second look
        var r = c.Reactivator();

        Assert.That(r.Reactivate(c.Lvm(c.Leaf)), Is.Zero, string.Join("\n", c.Log));

        Assert.That(r.Walks, Is.EqualTo(2));
        Assert.That(c.Lvchange.Calls, Is.EqualTo(new[]
        {
            LvmChain.Activate(c.Leaf), LvmChain.Activate(c.MidVolume),
            LvmChain.Activate(c.Leaf), LvmChain.Activate(c.MidVolume), LvmChain.Activate(c.BaseVolume),
        }));
        Assert.That(c.Log, Has.Some.Contains("walk 1 of 10 failed, retrying from the leaf: parent uuid mismatch"));
    }

    [Test]
    public void A_failing_lvchange_is_retried_and_its_message_reported()
    {
        using var c = new LvmChain();
        c.Lvchange.FailCall(LvmChain.BaseName, 1);
        var r = c.Reactivator();
        Assert.That(r.Reactivate(c.Lvm(c.Leaf)), Is.Zero);
        Assert.That(r.Walks, Is.EqualTo(2));
        Assert.That(c.Log, Has.Some.Contains("exited with 5").And.Contains("Failed to activate"));

        c.Lvchange.ResetCounts();
        for (int call = 1; call <= 10; call++) c.Lvchange.FailCall("VHD-leaf", call);
        Assert.That(r.Reactivate(c.Lvm(c.Leaf)), Is.EqualTo(-Errno.EIO));
        Assert.That(c.Log.Last(), Does.Contain("reactivation failed after 10 walks"));
    }

    [Test]
    public void A_missing_lvchange_program_is_a_clear_error()
    {
        using var c = new LvmChain();
        var r = new LvmReactivator(new LvmOptions { Lvchange = c.Dir["no-such-lvchange"], WalkAttempts = 2 },
            new WorkerLog { Sink = (_, line) => c.Log.Add(line.ToString()) }, c.Clock);
        Assert.That(r.Reactivate(c.Lvm(c.Leaf)), Is.EqualTo(-Errno.ENOENT));
        Assert.That(c.Log.Last(), Does.Contain("cannot run " + c.Dir["no-such-lvchange"]));
    }

    [Test]
    public void Storage_other_than_LVM_runs_nothing()
    {
        using var c = new LvmChain();
        var r = c.Reactivator();
        Assert.That(r.Reactivate(new VbdOpenParameters(c.Leaf, DriverType.Vhd, Storage: StorageType.Ext)), Is.Zero);
        Assert.That(c.Lvchange.Calls, Is.Empty);
        Assert.That(r.Walks, Is.Zero);
    }

    [Test]
    public void A_volume_without_VHD_in_its_name_is_activated_and_ends_the_walk()
    {
        using var c = new LvmChain();
        string raw = Path.Combine(c.Dir["vg"], "LV-raw");
        File.WriteAllBytes(raw, new byte[4096]);
        Assert.That(c.Reactivator().Reactivate(c.Lvm(raw)), Is.Zero);
        Assert.That(c.Lvchange.Calls, Is.EqualTo(new[] { LvmChain.Activate(raw) }));
    }

    [Test]
    public void A_locator_that_is_not_dot_slash_volume_is_refused_rather_than_cut_blindly()
    {
        using var c = new LvmChain();
        string elsewhere = Path.Combine(c.Dir["vg"], "VHD-elsewhere"); // locator becomes ../mapper/<base>
        VhdCreator.Create(elsewhere, new VhdCreateOptions { Type = DiskType.Differencing, ParentPath = c.BaseVolume });
        var r = new LvmReactivator(new LvmOptions { Lvchange = c.Lvchange.Executable, DeviceMapperDirectory = c.Mapper, WalkAttempts = 1 },
            new WorkerLog { Sink = (_, line) => c.Log.Add(line.ToString()) }, c.Clock);
        Assert.That(r.Reactivate(c.Lvm(elsewhere)), Is.EqualTo(-Errno.EINVAL));
        Assert.That(c.Log.Last(), Does.Contain($"MACX parent locator '../mapper/{LvmChain.BaseName}' is not ./<logical volume>"));
    }
}
