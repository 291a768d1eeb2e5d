using BlkTapCtrl.Testing;
using BlkTapCtrl.Vhd.Format;
using BlkTapCtrl.Vhd.Image;
using static BlkTapCtrl.Integration.Tests.Vhd.VhdTestFiles;

namespace BlkTapCtrl.Integration.Tests.Vhd;

/// <summary>VHDs on a block device (a loop device): the primary footer is the device's last sector.</summary>
public class VhdBlockDeviceTests
{
    private sealed class LoopDevice : IDisposable
    {
        public string Path { get; }
        private LoopDevice(string path) => Path = path;

        public static async Task<LoopDevice> AttachAsync(string file)
        {
            var (code, stdout, stderr) = await Run("losetup", "/", "-f", "--show", file);
            if (code != 0)
                Assert.Ignore($"losetup is not usable here: {stderr.Trim()}");
            return new LoopDevice(stdout.Trim());
        }

        public void Dispose() => Run("losetup", "/", "-d", Path).GetAwaiter().GetResult();
    }

    // CA-19010: repair on a block device writes the footer at device end − 512 (and the backup at 0),
    // not at the end of the data as for files.
    [Test]
    public async Task CA_19010_repair_on_a_block_device_writes_the_footer_at_device_end()
    {
        using var d = new TempDir("vbd");
        var backing = d["dev.img"];
        using (var f = File.Create(backing)) f.SetLength(32 << 20);
        using var loop = await LoopDevice.AttachAsync(backing);

        var create = await VhdUtil(d.Path, "create", "-n", loop.Path, "-s", "16");
        Assert.That(create.Code, Is.EqualTo(0), create.Out + create.Err);
        using (var image = VhdImage.Open(loop.Path))
        {
            Assert.That(image.IsBlockDevice, Is.True);
            image.Write(100, new byte[4096].Select((_, i) => (byte)i).ToArray());
        }
        Assert.That((await VhdUtil(d.Path, "check", "-n", loop.Path)).Out, Is.EqualTo($"{loop.Path} is valid\n"));

        // Zero the primary footer (last 512 bytes of the device).
        long devSize = 32 << 20;
        using (var fs = new FileStream(loop.Path, FileMode.Open, FileAccess.Write))
        {
            fs.Position = devSize - 512;
            fs.Write(new byte[512]);
        }
        var broken = await VhdUtil(d.Path, "check", "-n", loop.Path);
        Assert.That(broken.Code, Is.EqualTo(22));
        Assert.That(broken.Out, Does.StartWith("primary footer invalid: invalid cookie"));

        Assert.That((await VhdUtil(d.Path, "repair", "-n", loop.Path)).Code, Is.EqualTo(0));
        Assert.That((await VhdUtil(d.Path, "check", "-n", loop.Path)).Out, Is.EqualTo($"{loop.Path} is valid\n"));
        using var dev = new FileStream(loop.Path, FileMode.Open, FileAccess.Read);
        var footer = new byte[512];
        dev.Position = devSize - 512;
        dev.ReadExactly(footer);
        Assert.That(VhdFooter.Parse(footer).HasValidCookie, Is.True);
        Assert.That(new FileInfo(backing).Length, Is.EqualTo(devSize), "the device is never truncated");
    }
}
