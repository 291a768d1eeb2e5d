using BlkTapCtrl.Controller.Channels;

namespace BlkTapCtrl.Controller.Tests;

/// <summary>Only <c>/local/domain/&lt;n&gt;/backend/tap/&lt;domid&gt;/&lt;devid&gt;</c> is probed or removed (§1.3).</summary>
public class BackendPathTests
{
    [Test]
    public void Accepts_exactly_the_vbd_directory()
    {
        Assert.That(BackendPath.TryParse("/local/domain/0/backend/tap/5/51712"),
            Is.EqualTo(new BackendPath(0, 5, 51712, "/local/domain/0/backend/tap/5/51712")));
    }

    [TestCase("/local/domain/0/backend/tap")]
    [TestCase("/local/domain/0/backend/tap/5")]
    [TestCase("/local/domain/0/backend/tap/5/51712/params")]
    [TestCase("/local/domain/0/backend/tap/5/x")]
    [TestCase("/local/domain/0/backend/vbd/5/51712")]
    [TestCase("/local/domain/0/backend/tap/-5/1")]
    [TestCase("local/domain/0/backend/tap/5/1")]
    public void Rejects_everything_else(string path) => Assert.That(BackendPath.TryParse(path), Is.Null);
}
