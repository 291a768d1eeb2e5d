using BlkTapCtrl.Protocol.Control;
using BlkTapCtrl.Testing;

namespace BlkTapCtrl.Integration.Tests.Worker;

/// <summary>The real tapdisk process driven over its real FIFOs with real control records (reference §2, §3.1).</summary>
[TestFixture]
public class TapdiskControlProtocolTests
{
    private static string MakeImage(TempDir dir, string name, int sectors, byte fill = 0)
    {
        string path = dir[name];
        var data = new byte[sectors * 512];
        Array.Fill(data, fill);
        File.WriteAllBytes(path, data);
        return path;
    }

    [TestCase(DriverType.Aio, "sync")]
    [TestCase(DriverType.Aio, "aio")]
    [TestCase(DriverType.Ram, "sync")]
    public async Task Pid_open_pause_resume_close_then_the_process_exits_0(DriverType driver, string backend)
    {
        using var dir = new TempDir();
        string image = MakeImage(dir, "disk.img", 2048);
        using var tap = await TapdiskControlClient.StartAsync(dir, new Dictionary<string, string?> { ["TAPDISK_IO_BACKEND"] = backend });

        var pid = await tap.RequestAsync(ControlMessage.Simple(ControlMessageType.Pid, 7));
        Assert.That((pid.Type, pid.Cookie, pid.Pid), Is.EqualTo((ControlMessageType.PidResponse, (ushort)7, tap.Process.Pid)));

        var open = await tap.RequestAsync(ControlMessage.Open(7, driver, image, ControlOpenFlags.None, StorageType.Ext, 3, 1));
        Assert.That((open.Type, open.Cookie, open.Sectors, open.SectorSize, open.Info),
            Is.EqualTo((ControlMessageType.OpenResponse, (ushort)7, 2048UL, 512U, 0U)), tap.Process.StdErr);
        Assert.That(open.DriverType, Is.Zero, "tapdisk replies carry drivertype 0");

        var pause = await tap.RequestAsync(ControlMessage.Simple(ControlMessageType.Pause, 7));
        Assert.That(pause.Type, Is.EqualTo(ControlMessageType.PauseResponse));

        string other = MakeImage(dir, "other.img", 4096);
        var resume = await tap.RequestAsync(ControlMessage.Resume(7, driver, other));
        Assert.That((resume.Type, resume.Cookie), Is.EqualTo((ControlMessageType.ResumeResponse, (ushort)7)), tap.Process.StdErr);

        tap.Send(ControlMessage.Simple(ControlMessageType.Exit, 7)); // ignored
        var close = await tap.RequestAsync(ControlMessage.Simple(ControlMessageType.Close, 7));
        Assert.That((close.Type, close.Cookie), Is.EqualTo((ControlMessageType.CloseResponse, (ushort)7)));
        Assert.That(await tap.Process.WaitAsync(TimeSpan.FromSeconds(10)), Is.Zero);
    }

    [Test]
    public async Task Out_of_order_and_malformed_messages_get_ERROR_and_never_crash()
    {
        using var dir = new TempDir();
        string image = MakeImage(dir, "disk.img", 64);
        using var tap = await TapdiskControlClient.StartAsync(dir);
        Assert.That((await tap.RequestAsync(ControlMessage.Simple(ControlMessageType.Pid, 1))).Type, Is.EqualTo(ControlMessageType.PidResponse));

        var duplicate = await tap.RequestAsync(ControlMessage.Simple(ControlMessageType.Pid, 1));
        Assert.That((duplicate.Type, duplicate.Cookie), Is.EqualTo((ControlMessageType.Error, (ushort)1)), "duplicate cookie");

        var resumeNotPaused = await tap.RequestAsync(ControlMessage.Resume(1, DriverType.Aio, image));
        Assert.That(resumeNotPaused.Type, Is.EqualTo(ControlMessageType.Error), "RESUME while not paused");

        var badOpen = await tap.RequestAsync(ControlMessage.Open(1, DriverType.Aio, dir["missing.img"], 0, StorageType.Ext, 0, 0));
        Assert.That(badOpen.Type, Is.EqualTo(ControlMessageType.Error), "OPEN of a missing file");

        var unknownCookie = await tap.RequestAsync(ControlMessage.Simple(ControlMessageType.Pause, 99));
        Assert.That((unknownCookie.Type, unknownCookie.Cookie), Is.EqualTo((ControlMessageType.Error, (ushort)99)));

        var record = new byte[ControlMessage.Size];
        record[0] = 77; record[2] = 1; // unknown type 77, cookie 1
        tap.SendRaw(record);
        Assert.That((await tap.ReceiveAsync()).Type, Is.EqualTo(ControlMessageType.Error), "unknown type");

        // OPEN whose path has no NUL inside its 256 bytes: a malformed record.
        ControlMessage.Open(1, DriverType.Aio, "x", 0, StorageType.Ext, 0, 0).WriteTo(record);
        record.AsSpan(8 + 14, 256).Fill((byte)'a');
        tap.SendRaw(record);
        Assert.That((await tap.ReceiveAsync()).Type, Is.EqualTo(ControlMessageType.Error), "malformed path");

        var open = await tap.RequestAsync(ControlMessage.Open(1, DriverType.Aio, image, 0, StorageType.Ext, 0, 0));
        Assert.That(open.Type, Is.EqualTo(ControlMessageType.OpenResponse), "still serving after the errors: " + tap.Process.StdErr);
        var openTwice = await tap.RequestAsync(ControlMessage.Open(1, DriverType.Aio, image, 0, StorageType.Ext, 0, 0));
        Assert.That(openTwice.Type, Is.EqualTo(ControlMessageType.Error), "OPEN twice");

        var force = await tap.RequestAsync(ControlMessage.Simple(ControlMessageType.ForceShutdown, 1));
        Assert.That(force.Type, Is.EqualTo(ControlMessageType.CloseResponse));
        Assert.That(await tap.Process.WaitAsync(TimeSpan.FromSeconds(10)), Is.Zero);
    }

    [Test]
    public async Task An_unknown_cookie_before_any_PID_gets_ERROR_and_the_worker_exits_0()
    {
        using var dir = new TempDir();
        using var tap = await TapdiskControlClient.StartAsync(dir);
        var reply = await tap.RequestAsync(ControlMessage.Simple(ControlMessageType.Close, 5));
        Assert.That((reply.Type, reply.Cookie), Is.EqualTo((ControlMessageType.Error, (ushort)5)));
        Assert.That(await tap.Process.WaitAsync(TimeSpan.FromSeconds(10)), Is.Zero);
    }

    [Test]
    public async Task Records_split_into_partial_writes_are_reassembled()
    {
        using var dir = new TempDir();
        using var tap = await TapdiskControlClient.StartAsync(dir);
        var record = new byte[ControlMessage.Size];
        ControlMessage.Simple(ControlMessageType.Pid, 3).WriteTo(record);
        tap.SendRaw(record[..5]);
        await Task.Delay(50);
        tap.SendRaw(record[5..200]);
        await Task.Delay(50);
        tap.SendRaw(record[200..]);
        Assert.That((await tap.ReceiveAsync()).Type, Is.EqualTo(ControlMessageType.PidResponse));
        Assert.That((await tap.RequestAsync(ControlMessage.Simple(ControlMessageType.Close, 3))).Type, Is.EqualTo(ControlMessageType.CloseResponse));
        Assert.That(await tap.Process.WaitAsync(TimeSpan.FromSeconds(10)), Is.Zero);
    }

    [Test]
    public async Task Wrong_argument_count_exits_1()
    {
        var (code, _, err) = await ChildProcess.RunAsync(RepoPaths.Executable("tapdisk"), ["only-one"]);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err, Does.Contain("usage"));
    }

    [Test]
    public async Task SIGTERM_closes_the_VBDs_and_exits_0()
    {
        using var dir = new TempDir();
        string image = MakeImage(dir, "disk.img", 64);
        using var tap = await TapdiskControlClient.StartAsync(dir);
        await tap.RequestAsync(ControlMessage.Simple(ControlMessageType.Pid, 2));
        Assert.That((await tap.RequestAsync(ControlMessage.Open(2, DriverType.Aio, image, 0, StorageType.Ext, 0, 0))).Type,
            Is.EqualTo(ControlMessageType.OpenResponse));
        var (kill, _, _) = await ChildProcess.RunAsync("kill", ["-TERM", tap.Process.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        Assert.That(kill, Is.Zero);
        var close = await tap.ReceiveAsync();
        Assert.That((close.Type, close.Cookie), Is.EqualTo((ControlMessageType.CloseResponse, (ushort)2)));
        Assert.That(await tap.Process.WaitAsync(TimeSpan.FromSeconds(10)), Is.Zero);
    }
}
