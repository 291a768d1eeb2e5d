using BlkTapCtrl.Controller.Devices;

namespace BlkTapCtrl.Controller.Tests;

/// <summary>Without the kernel driver the controller hands out minors 1..256 itself, lowest free first.</summary>
public class EmulatedBlktapDevicesTests
{
    [Test]
    public void Minors_are_allocated_lowest_first_and_reused()
    {
        var devices = new EmulatedBlktapDevices("/run/bt");
        var a = devices.Allocate(1, 51712);
        var b = devices.Allocate(1, 51728);
        Assert.That((a.Minor, b.Minor), Is.EqualTo((1, 2)));
        Assert.That(a.NbdSocket, Is.EqualTo("/run/bt/nbd1.sock"));
        Assert.That(a.RingDevice, Is.EqualTo("/run/bt/ring1"));
        devices.Release(a);
        Assert.That(devices.Allocate(2, 1).Minor, Is.EqualTo(1));
        Assert.That(devices.CompleteConnection(b), Is.Null, "no kernel block device to publish");
    }

    [Test]
    public void At_most_256_minors()
    {
        var devices = new EmulatedBlktapDevices("/run/bt");
        for (int i = 1; i <= 256; i++) Assert.That(devices.Allocate(1, i).Minor, Is.EqualTo(i));
        Assert.That(() => devices.Allocate(1, 999), Throws.TypeOf<IOException>().With.Message.Contains("no free blktap minor"));
    }
}
