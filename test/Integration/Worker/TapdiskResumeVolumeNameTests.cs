using BlkTapCtrl.Integration.Tests.Diagnostics;
using BlkTapCtrl.Protocol.Control;
using BlkTapCtrl.Testing;

namespace BlkTapCtrl.Integration.Tests.Worker;

/// <summary>
/// RESUME's LVM name check (reference §3.5) with the real tapdisk process: a raw VDI's volume
/// <c>&lt;dev&gt;/VG_XenStorage-&lt;sr&gt;/LV-&lt;vdi&gt;</c> is OPENed; while the VBD is paused a live snapshot renames it
/// to <c>…/VHD-&lt;vdi&gt;</c> (a VHD made by our vhd-util), but RESUME still carries the old name. The fake
/// <c>lvchange</c> fails on the old name, and the VHD volume only appears when it is activated the second time, so
/// the first attempt finds neither and the second, 1 s later, resumes from the VHD volume with the vhd driver:
/// the NBD export then has the VHD's size, and what is written through it lands in the VHD (read back by
/// qemu-io's own VHD driver).
/// </summary>
[TestFixture]
public class TapdiskResumeVolumeNameTests
{
    private const string Sr = "3f1e5ab2-7c1d-4e0a-9b6f-0123456789ab", Vdi = "a9d8c7b6-5e4f-4a3b-8c2d-1e0f9a8b7c6d";

    [Test]
    public async Task RESUME_of_an_LV_volume_renamed_to_VHD_retries_the_name_check_1_s_apart_and_resumes_from_the_VHD_volume_as_vhd()
    {
        using var dir = new TempDir();
        var lvchange = new FakeLvchange(dir.Path);
        string dev = Directory.CreateDirectory(dir["dev"]).FullName;
        string vg = Directory.CreateDirectory(Path.Combine(dev, $"VG_XenStorage-{Sr}")).FullName;
        string raw = Path.Combine(vg, $"LV-{Vdi}"), vhd = Path.Combine(vg, $"VHD-{Vdi}");
        using (var f = File.Create(raw)) f.SetLength(8 << 20);
        var (code, output, err) = await ChildProcess.RunAsync(RepoPaths.Executable("vhd-util"), ["create", "-n", dir["snapshot.vhd"], "-s", "16"]);
        Assert.That(code, Is.Zero, output + err);

        using var tap = await TapdiskControlClient.StartAsync(dir, new Dictionary<string, string?>
        {
            ["TAPDISK_LVCHANGE"] = lvchange.Executable,
            ["TAPDISK_DEV_DIR"] = dev,
        });
        Assert.That((await tap.RequestAsync(ControlMessage.Simple(ControlMessageType.Pid, 1))).Type, Is.EqualTo(ControlMessageType.PidResponse));
        var open = await tap.RequestAsync(ControlMessage.Open(1, DriverType.Aio, raw, ControlOpenFlags.None, StorageType.Lvm, 1, 1));
        Assert.That((open.Type, open.Sectors), Is.EqualTo((ControlMessageType.OpenResponse, 8UL * 2048)), tap.Process.StdErr);
        Assert.That((await tap.RequestAsync(ControlMessage.Simple(ControlMessageType.Pause, 1))).Type, Is.EqualTo(ControlMessageType.PauseResponse));

        File.Delete(raw);                                        // the live snapshot renames the volume …
        lvchange.FailCall($"LV-{Vdi}", 2);                      // … so activating the old name fails from now on
        lvchange.FailCall($"LV-{Vdi}", 3);
        lvchange.SwapOnCall($"VHD-{Vdi}", 2, dir["snapshot.vhd"]); // and the new one shows up on its second activation
        var started = DateTime.UtcNow;
        var resumed = await tap.RequestAsync(ControlMessage.Resume(1, DriverType.Aio, raw));
        var took = DateTime.UtcNow - started;

        Assert.That(resumed.Type, Is.EqualTo(ControlMessageType.ResumeResponse), tap.Process.StdErr);
        Assert.That(took, Is.GreaterThanOrEqualTo(TimeSpan.FromSeconds(0.9)), "the second attempt comes 1 s after the first");
        string A(string volume) => "-ay --refresh " + volume;
        Assert.That(lvchange.Calls, Is.EqualTo(new[]
        {
            A(raw),           // OPEN
            A(raw), A(vhd),   // RESUME attempt 1: neither accessible
            A(raw), A(vhd),   // attempt 2: the VHD volume is there
            A(vhd),           // the reactivation walk from the new name
        }));

        using (var nbd = new MinimalNbdClient(dir["nbd1.sock"]))
        {
            Assert.That(nbd.Size, Is.EqualTo(16UL << 20), "the export is the VHD's 16 MiB, not the raw volume's 8");
            var block = new byte[64 << 10];
            Array.Fill(block, (byte)0x5a);
            Assert.That(nbd.Write(12 << 20, block), Is.Zero);
            var back = new byte[block.Length];
            Assert.That(nbd.Read(12 << 20, back), Is.Zero);
            Assert.That(back, Is.EqualTo(block));
        }
        Assert.That((await tap.RequestAsync(ControlMessage.Simple(ControlMessageType.Close, 1))).Type, Is.EqualTo(ControlMessageType.CloseResponse));
        Assert.That(await tap.Process.WaitAsync(TimeSpan.FromSeconds(10)), Is.Zero);

        (code, output, err) = await ChildProcess.RunAsync("qemu-io", ["-f", "vpc", "-r", "-c", "read -P 0x5a 12M 64k", vhd]);
        Assert.That(code, Is.Zero, output + err);
        Assert.That(output, Does.Contain("read 65536/65536 bytes").And.Not.Contain("Pattern verification failed"), "qemu's VHD driver reads the data back");
        string log = File.ReadAllText(tap.LogFile(dir.Path) ?? throw new AssertionException("no tapdisk log file in " + dir.Path));
        Assert.That(log, Does.Contain($"neither {raw} nor {vhd} accessible").And.Contain($"couldn't find {raw}, trying {vhd}"));
    }
}
