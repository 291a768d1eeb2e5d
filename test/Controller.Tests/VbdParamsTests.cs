using BlkTapCtrl.Controller.Params;
using BlkTapCtrl.Protocol.Control;

namespace BlkTapCtrl.Controller.Tests;

/// <summary>params / sm-data parsing of reference §1.4.</summary>
public class VbdParamsTests
{
    [TestCase("aio:/img/disk.raw", DriverType.Aio, "/img/disk.raw")]
    [TestCase("vhd:/img/a:b.vhd", DriverType.Vhd, "/img/a:b.vhd")] // path = everything after the first ':'
    [TestCase("ram:/dev/zero", DriverType.Ram, "/dev/zero")]
    [TestCase("bc:/x", DriverType.BlockCache, "/x")]
    [TestCase("vhdi:/x", DriverType.VhdIndex, "/x")]
    [TestCase("log:/x", DriverType.Log, "/x")]
    [TestCase("a:/x", DriverType.Aio, "/x")] // prefix match on as many characters as the params prefix has
    public void Valid_params(string text, DriverType driver, string path)
    {
        var p = VbdParams.Parse(text);
        Assert.That((p.Driver, p.VdiPath, p.Storage), Is.EqualTo((driver, path, StorageType.Ext)));
    }

    [TestCase("/img/disk.raw", "no ':'")]
    [TestCase("qcow:/x", "not a supported disk type")]
    [TestCase("sync:/x", "not a supported disk type")]
    [TestCase("vmdk:/x", "not a supported disk type")]
    [TestCase("xyz:/x", "not a supported disk type")]
    [TestCase(":/x", "not a supported disk type")]
    [TestCase("aio:", "empty path")]
    [TestCase("averylongtype:/x", "longer than 9")]
    public void Invalid_params_name_the_problem(string text, string problem) =>
        Assert.That(() => VbdParams.Parse(text), Throws.TypeOf<ParamsException>().With.Message.Contains(problem));

    [Test]
    public void Params_of_255_bytes_or_more_are_invalid()
    {
        Assert.That(() => VbdParams.Parse("aio:/" + new string('x', 249)), Throws.Nothing); // 254 chars + NUL = 255
        Assert.That(() => VbdParams.Parse("aio:/" + new string('x', 250)), Throws.TypeOf<ParamsException>());
    }

    [Test]
    public void Vdi_type_overrides_the_prefix()
    {
        Assert.That(VbdParams.Parse("aio:/x.vhd", vdiType: "vhd").Driver, Is.EqualTo(DriverType.Vhd));
        Assert.That(() => VbdParams.Parse("aio:/x", vdiType: "qcow"), Throws.TypeOf<ParamsException>());
        Assert.That(() => VbdParams.Parse("aio:/x", vdiType: "vhdvhdvhd"), Throws.TypeOf<ParamsException>().With.Message.Contains("vdi-type"));
    }

    [TestCase(null, StorageType.Ext)]
    [TestCase("nfs", StorageType.Nfs)]
    [TestCase("ext", StorageType.Ext)]
    [TestCase("lvm", StorageType.Lvm)]
    [TestCase("iscsi", StorageType.Ext)]
    public void Storage_type(string? text, StorageType expected) =>
        Assert.That(VbdParams.Parse("vhd:/x", storageType: text).Storage, Is.EqualTo(expected));
}
