using BlkTapCtrl.Protocol.Control;
using BlkTapCtrl.Testing;

namespace BlkTapCtrl.Integration.Tests.Worker;

/// <summary>
/// §5 CA-40171 with the real tapdisk process: a 3-VHD chain made by our vhd-util, named as on an LVM SR
/// (device-mapper names in a "mapper" directory, the VBD path a <c>VG_…/VHD-…</c> symlink), and a fake
/// <c>lvchange</c> executable that logs every activation. OPEN and RESUME with storage LVM reactivate the
/// chain; a middle volume whose uuid is not the one the leaf records makes RESUME fail with ERROR; once the
/// right volume is back, RESUME answers RESUME_RSP.
/// <para>The reactivation walk reads the VHD metadata itself (any driver); here the vhd driver then opens the
/// chain it validated.</para>
/// </summary>
[TestFixture]
public class TapdiskLvmReactivationTests
{
    private const string Base = "VG_XenStorage--sr-VHD--base", Mid = "VG_XenStorage--sr-VHD--mid", Leaf = "VG_XenStorage--sr-VHD--leaf";

    private static async Task VhdUtil(params string[] args)
    {
        var (code, output, err) = await ChildProcess.RunAsync(RepoPaths.Executable("vhd-util"), args);
        Assert.That(code, Is.Zero, $"vhd-util {string.Join(' ', args)}: {output}{err}");
    }

    /// <summary>The SR both tests start from: base ← mid ← leaf in the "mapper" directory, plus "wrong-mid" (same parent, another uuid).</summary>
    private sealed class LvmSr(TempDir dir)
    {
        public readonly FakeLvchange Lvchange = new(dir.Path);
        public readonly string Mapper = Directory.CreateDirectory(dir["mapper"]).FullName;

        public string M(string name) => Path.Combine(Mapper, name);

        /// <summary>What tapdisk is started with: the fake lvchange, the mapper directory, 20 ms between walks.</summary>
        public Dictionary<string, string?> Environment => new()
        {
            ["TAPDISK_LVCHANGE"] = Lvchange.Executable,
            ["TAPDISK_DEV_MAPPER"] = Mapper,
            ["TAPDISK_LVM_RETRY_MS"] = "20",
        };

        public static async Task<LvmSr> CreateAsync(TempDir dir)
        {
            var sr = new LvmSr(dir);
            await VhdUtil("create", "-n", sr.M(Base), "-s", "8");
            await VhdUtil("snapshot", "-n", sr.M(Mid), "-p", sr.M(Base));
            await VhdUtil("fill", "-n", sr.M(Mid)); // vhd-util snapshot skips an empty parent, as blktap's does
            await VhdUtil("snapshot", "-n", sr.M(Leaf), "-p", sr.M(Mid));
            await VhdUtil("snapshot", "-n", sr.M("wrong-mid"), "-p", sr.M(Base)); // same parent, another uuid
            return sr;
        }
    }

    [Test]
    public async Task CA40171_RESUME_with_a_middle_volume_of_the_wrong_uuid_gets_ERROR_and_RESUME_RSP_once_fixed()
    {
        using var dir = new TempDir();
        var sr = await LvmSr.CreateAsync(dir);
        var lvchange = sr.Lvchange;
        string M(string name) => sr.M(name);
        Directory.CreateDirectory(dir["vg"]);
        string vbdPath = Path.Combine(dir["vg"], "VHD-leaf");
        File.CreateSymbolicLink(vbdPath, M(Leaf));

        using var tap = await TapdiskControlClient.StartAsync(dir, sr.Environment);
        Assert.That((await tap.RequestAsync(ControlMessage.Simple(ControlMessageType.Pid, 4))).Type, Is.EqualTo(ControlMessageType.PidResponse));
        var open = await tap.RequestAsync(ControlMessage.Open(4, DriverType.Vhd, vbdPath, ControlOpenFlags.None, StorageType.Lvm, 1, 1));
        Assert.That((open.Type, open.Sectors), Is.EqualTo((ControlMessageType.OpenResponse, 8UL * 2048)), tap.Process.StdErr);
        string[] walk = [$"-ay --refresh {vbdPath}", $"-ay --refresh {M(Mid)}", $"-ay --refresh {M(Base)}"];
        Assert.That(lvchange.Calls, Is.EqualTo(walk), "OPEN activates the leaf, then each parent named by its MACX locator");

        Assert.That((await tap.RequestAsync(ControlMessage.Simple(ControlMessageType.Pause, 4))).Type, Is.EqualTo(ControlMessageType.PauseResponse));
        File.Move(M(Mid), dir["good-mid"]);
        File.Move(M("wrong-mid"), M(Mid));
        var refused = await tap.RequestAsync(ControlMessage.Resume(4, DriverType.Vhd, vbdPath));
        Assert.That((refused.Type, refused.Cookie), Is.EqualTo((ControlMessageType.Error, (ushort)4)), "the middle's uuid is not the leaf's parent uuid");
        Assert.That(lvchange.Calls.Skip(3), Is.EqualTo(walk[..1].Concat(Enumerable.Repeat(walk[..2], 10).SelectMany(w => w))),
            "RESUME's name check activates the leaf, then ten walks, each restarted at the leaf, none going past the wrong middle");

        File.Move(dir["good-mid"], M(Mid), overwrite: true);
        var resumed = await tap.RequestAsync(ControlMessage.Resume(4, DriverType.Vhd, vbdPath));
        Assert.That(resumed.Type, Is.EqualTo(ControlMessageType.ResumeResponse), tap.Process.StdErr);
        Assert.That(lvchange.Calls.TakeLast(3), Is.EqualTo(walk));

        Assert.That((await tap.RequestAsync(ControlMessage.Simple(ControlMessageType.Close, 4))).Type, Is.EqualTo(ControlMessageType.CloseResponse));
        Assert.That(await tap.Process.WaitAsync(TimeSpan.FromSeconds(10)), Is.Zero);
        string log = File.ReadAllText(tap.LogFile(dir.Path) ?? throw new AssertionException("no tapdisk log file in " + dir.Path));
        Assert.That(log, Does.Contain("parent uuid mismatch").And.Contain("reactivation failed after 10 walks"));
    }

    [Test]
    public async Task CA40171_a_volume_rewritten_during_OPEN_is_walked_again_from_the_leaf()
    {
        using var dir = new TempDir();
        var sr = await LvmSr.CreateAsync(dir);
        var lvchange = sr.Lvchange;
        string M(string name) => sr.M(name);
        File.Move(M(Mid), dir["good-mid"]);
        File.Move(M("wrong-mid"), M(Mid));
        lvchange.SwapOnCall(Mid, 2, dir["good-mid"]); // the master's rewrite lands before the second activation

        using var tap = await TapdiskControlClient.StartAsync(dir, sr.Environment);
        await tap.RequestAsync(ControlMessage.Simple(ControlMessageType.Pid, 1));
        var open = await tap.RequestAsync(ControlMessage.Open(1, DriverType.Vhd, M(Leaf), ControlOpenFlags.None, StorageType.Lvm, 1, 1));
        Assert.That(open.Type, Is.EqualTo(ControlMessageType.OpenResponse), tap.Process.StdErr);
        Assert.That(lvchange.Calls, Is.EqualTo(new[]
        {
            $"-ay --refresh {M(Leaf)}", $"-ay --refresh {M(Mid)}",
            $"-ay --refresh {M(Leaf)}", $"-ay --refresh {M(Mid)}", $"-ay --refresh {M(Base)}",
        }));
        Assert.That((await tap.RequestAsync(ControlMessage.Simple(ControlMessageType.Close, 1))).Type, Is.EqualTo(ControlMessageType.CloseResponse));
        Assert.That(await tap.Process.WaitAsync(TimeSpan.FromSeconds(10)), Is.Zero);
    }
}
