using BlkTapCtrl.Protocol.Control;
using BlkTapCtrl.Testing;
using BlkTapCtrl.Vhd.Operations;
using BlkTapCtrl.Worker.Images;
using BlkTapCtrl.Worker.Interop;
using BlkTapCtrl.Worker.Logging;
using BlkTapCtrl.Worker.Lvm;
using BlkTapCtrl.Worker.Scheduling;
using BlkTapCtrl.Worker.Server;
using BlkTapCtrl.Worker.Vbd;

namespace BlkTapCtrl.Worker.Tests.Lvm;

/// <summary>
/// RESUME's LVM name check (reference §3.5): a live snapshot of a raw VDI renames its volume
/// <c>/dev/VG_x-&lt;sr&gt;/LV-&lt;vdi&gt;</c> to <c>…/VHD-&lt;vdi&gt;</c> while XenStore keeps the old name, so when
/// <c>lvchange</c> fails on the name RESUME carries, the VBD resumes from the VHD volume with the vhd driver; at
/// most 10 attempts, 1 s apart. A real VBD, the real reactivator, a fake <c>lvchange</c> executable, volumes as
/// files under a test "dev" directory, virtual time.
/// </summary>
[TestFixture]
public class ResumeVolumeNameTests
{
    private const string Sr = "3f1e5ab2-7c1d-4e0a-9b6f-0123456789ab", Vdi = "a9d8c7b6-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
    private const string RawName = "LV-" + Vdi, VhdName = "VHD-" + Vdi;

    private sealed class LvhdSr : IDisposable
    {
        public readonly TempDir Dir = new("lvhd");
        public readonly FakeLvchange Lvchange;
        public readonly VirtualClock Clock = new();
        public readonly List<string> Log = new();
        public readonly string Dev, RawVolume, VhdVolume;
        public readonly TapdiskServer Server;
        public readonly VirtualBlockDevice Vbd;

        public LvhdSr()
        {
            Lvchange = new FakeLvchange(Dir.Path);
            Dev = Directory.CreateDirectory(Dir["dev"]).FullName;
            string vg = Directory.CreateDirectory(Path.Combine(Dev, $"VG_XenStorage-{Sr}")).FullName;
            RawVolume = Path.Combine(vg, RawName);
            VhdVolume = Path.Combine(vg, VhdName);
            using (var f = File.Create(RawVolume)) f.SetLength(8 << 20);
            var log = new WorkerLog { Sink = (_, line) => Log.Add(line.ToString()) };
            var lvm = new LvmReactivator(new LvmOptions { Lvchange = Lvchange.Executable, DeviceDirectory = Dev }, log, Clock);
            Server = new TapdiskServer(new TapdiskServerOptions { Clock = Clock, Log = log, Lvm = lvm, Backend = IoBackendKind.Synchronous });
            Vbd = Server.CreateVbd(1);
        }

        public VbdOpenParameters Raw => new(RawVolume, DriverType.Aio, Storage: StorageType.Lvm);

        public void OpenAndPause()
        {
            Assert.That(Vbd.Open(Raw), Is.Zero, string.Join("\n", Log));
            Assert.That(Vbd.Pause(), Is.Zero);
            Assert.That(Vbd.Flags.HasFlag(VbdFlags.Paused), Is.True);
            File.Delete(RawVolume); // the live snapshot renamed the raw volume away
        }

        public static string Activate(string volume) => "-ay --refresh " + volume;

        public void Dispose()
        {
            Server.Dispose();
            Dir.Dispose();
        }
    }

    [Test]
    public void RESUME_of_a_raw_LV_volume_renamed_to_VHD_resumes_from_the_VHD_volume_with_the_vhd_driver()
    {
        using var sr = new LvhdSr();
        sr.OpenAndPause();
        VhdCreator.Create(sr.VhdVolume, new VhdCreateOptions { SizeBytes = 16 << 20 });
        sr.Lvchange.FailCall(RawName, 2); // the renamed volume is gone: lvchange fails on the old name
        long before = sr.Clock.NowMicroseconds;

        Assert.That(sr.Vbd.Resume(new VbdOpenParameters(sr.RawVolume, DriverType.Aio)), Is.Zero, string.Join("\n", sr.Log));

        Assert.That(sr.Clock.NowMicroseconds, Is.EqualTo(before), "found on the first attempt");
        Assert.That(sr.Lvchange.Calls, Is.EqualTo(new[]
        {
            LvhdSr.Activate(sr.RawVolume),                                  // OPEN's walk
            LvhdSr.Activate(sr.RawVolume), LvhdSr.Activate(sr.VhdVolume),  // RESUME's name check
            LvhdSr.Activate(sr.VhdVolume),                                  // the walk, from the new name
        }));
        var leaf = sr.Vbd.Chain!.Leaf;
        Assert.That((leaf.Type, leaf.Name), Is.EqualTo((DriverType.Vhd, sr.VhdVolume)));
        Assert.That(sr.Vbd.Sectors, Is.EqualTo(16UL << 20 >> 9), "the VHD's size, not the raw volume's");
        Assert.That(sr.Log, Has.Some.Contains($"couldn't find {sr.RawVolume}, trying {sr.VhdVolume}"));

    }

    [Test]
    public void RESUME_when_neither_the_LV_nor_the_VHD_volume_exists_fails_after_10_name_checks_1_s_apart()
    {
        using var sr = new LvhdSr();
        sr.OpenAndPause();
        for (int call = 2; call <= 11; call++) sr.Lvchange.FailCall(RawName, call);
        for (int call = 1; call <= 10; call++) sr.Lvchange.FailCall(VhdName, call);
        long before = sr.Clock.NowMicroseconds;

        Assert.That(sr.Vbd.Resume(new VbdOpenParameters(sr.RawVolume, DriverType.Aio)), Is.EqualTo(-Errno.ENOENT));

        Assert.That(sr.Clock.NowMicroseconds - before, Is.EqualTo(9_000_000), "10 attempts, 1 s apart");
        Assert.That(sr.Lvchange.Calls.Skip(1), Is.EqualTo(Enumerable.Repeat(
            new[] { LvhdSr.Activate(sr.RawVolume), LvhdSr.Activate(sr.VhdVolume) }, 10).SelectMany(c => c)));
        Assert.That(sr.Log, Has.Some.StartsWith("ERROR: errno 2 at tapdisk_vbd_check_file")
            .And.Contains($"neither {sr.RawVolume} nor {sr.VhdVolume} accessible"));
        Assert.That(sr.Vbd.Flags.HasFlag(VbdFlags.Paused), Is.True, "still paused: nothing was opened");
    }

    [Test]
    public void RESUME_of_a_failing_volume_that_is_not_an_LVHD_LV_name_fails_the_name_check_without_a_fallback()
    {
        using var sr = new LvhdSr();
        sr.OpenAndPause();
        string other = Path.Combine(sr.Dev, "some-vg", "some-lv");
        for (int call = 1; call <= 10; call++) sr.Lvchange.FailCall("some-lv", call);

        Assert.That(sr.Vbd.Resume(new VbdOpenParameters(other, DriverType.Aio)), Is.EqualTo(-Errno.EINVAL));

        Assert.That(sr.Lvchange.Calls.Skip(1), Is.EqualTo(Enumerable.Repeat(LvhdSr.Activate(other), 10)), "no VHD- name tried");
        Assert.That(sr.Log, Has.Some.Contains("is not an LVHD volume name"));
    }

    [Test]
    public void RESUME_on_storage_that_is_not_LVM_runs_no_name_check()
    {
        using var sr = new LvhdSr();
        var ext = new VbdOpenParameters(sr.RawVolume, DriverType.Aio, Storage: StorageType.Ext);
        Assert.That(sr.Vbd.Open(ext), Is.Zero);
        Assert.That(sr.Vbd.Pause(), Is.Zero);
        Assert.That(sr.Vbd.Resume(ext), Is.Zero);
        Assert.That(sr.Lvchange.Calls, Is.Empty);
    }

    [TestCase("/dev/VG_XenStorage-" + Sr + "/LV-" + Vdi, "/dev/VG_XenStorage-" + Sr + "/VHD-" + Vdi)]
    [TestCase("/dev/VG_x1-" + Sr + "/LV-" + Vdi, "/dev/VG_x1-" + Sr + "/VHD-" + Vdi)]
    public void An_LVHD_raw_volume_name_maps_to_its_VHD_name(string raw, string vhd) =>
        Assert.That(LvhdVolumeName.VhdNameOfRawVolume(raw, "/dev", out _), Is.EqualTo(vhd));

    [TestCase("/dev/VG_XenStorage-" + Sr + "/VHD-" + Vdi, "already names a VHD volume")]
    [TestCase("/dev/VG_XenStorage-" + Sr + "/LV-not-a-uuid", "neither LV-<vdi uuid> nor VHD-<vdi uuid>")]
    [TestCase("/dev/VG_XenStorage-" + Sr + "/LV-" + Vdi + "/x", "is not an LVHD volume name")]
    [TestCase("/dev/VG_Xen-Storage-" + Sr + "/LV-" + Vdi, "is not an LVHD volume name")]
    [TestCase("/dev/VG_-" + Sr + "/LV-" + Vdi, "is not an LVHD volume name")]
    [TestCase("/srv/VG_XenStorage-" + Sr + "/LV-" + Vdi, "is not an LVHD volume name")]
    [TestCase("/dev/mapper/VG_XenStorage--" + Sr + "-LV--" + Vdi, "is not an LVHD volume name")]
    public void Other_names_have_no_VHD_fallback(string name, string why)
    {
        Assert.That(LvhdVolumeName.VhdNameOfRawVolume(name, "/dev", out string reason), Is.Null);
        Assert.That(reason, Does.Contain(why));
    }
}
