using BlkTapCtrl.Testing;

namespace BlkTapCtrl.Integration.Tests.EndToEnd;

/// <summary>
/// The README's first command, <c>scripts/demo</c>, is itself a test: it must run the main job end to end
/// (VHD created, VBD started through XenStore, data through NBD, pause → snapshot → params switch → unpause,
/// data proved, tap-ctl list, teardown), and leave nothing behind (its duration is printed, not asserted: speed lives in bench/).
/// </summary>
[TestFixture]
public class DemoScriptTests
{
    [Test]
    public async Task Demo_runs_the_main_job_end_to_end_and_leaves_nothing_behind()
    {
        using var tmp = new TempDir("demo");
        // The test run built these projects already; in a Debug run the demo builds its Release binaries itself.
        bool built = File.Exists(Path.Combine(RepoPaths.Root, "artifacts", "bin", "BlkTapCtrl.Worker", "release", "tapdisk"))
                     && File.Exists(Path.Combine(RepoPaths.Root, "artifacts", "bin", "BlkTapCtrl.Controller", "release", "blktapctrl"))
                     && File.Exists(Path.Combine(RepoPaths.Root, "artifacts", "bin", "BlkTapCtrl.Tools.XenStored", "release", "xenstored"))
                     && File.Exists(Path.Combine(RepoPaths.Root, "artifacts", "bin", "BlkTapCtrl.Tools.VhdUtil", "release", "vhd-util"))
                     && File.Exists(Path.Combine(RepoPaths.Root, "artifacts", "bin", "BlkTapCtrl.Tools.TapCtl", "release", "tap-ctl"));
        var started = DateTime.UtcNow;
        var (code, output, error) = await ChildProcess.RunAsync(Path.Combine(RepoPaths.Root, "scripts", "demo"), [],
            new Dictionary<string, string?> { ["TMPDIR"] = tmp.Path, ["DEMO_NO_BUILD"] = built ? "1" : "0" },
            timeout: TimeSpan.FromMinutes(built ? 3 : 10));
        var took = DateTime.UtcNow - started;

        Assert.That(code, Is.Zero, $"scripts/demo failed:\n{output}\n{error}");
        Assert.That(output, Does.Contain("done: the main job ran end to end"));
        foreach (string step in new[] { "creating a 64 MiB dynamic VHD", "registering VBD", "pausing", "snapshot", "switching params", "tap-ctl list", "teardown" })
            Assert.That(output, Does.Contain(step), $"the demo narrates '{step}'");
        Assert.That(output, Does.Contain("vhd:").And.Contain("leaf.vhd"), "tap-ctl list shows the switched leaf");
        Assert.That(Directory.EnumerateFileSystemEntries(tmp.Path), Is.Empty, "the demo removes its private directory");
        TestContext.Out.WriteLine($"scripts/demo took {took.TotalSeconds:F1} s (its own step timings are in its output)");
    }
}
