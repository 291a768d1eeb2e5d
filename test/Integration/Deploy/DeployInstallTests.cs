using BlkTapCtrl.Testing;

namespace BlkTapCtrl.Integration.Tests.Deploy;

/// <summary>
/// deploy/install into a temporary DESTDIR, then the real systemd tools judge what it installed:
/// systemd-analyze verifies the units (executables present, every directive understood),
/// systemd-tmpfiles creates the run and log directories, logrotate parses its rules.
/// </summary>
[TestFixture, NonParallelizable]
public class DeployInstallTests
{
    private TempDir _dest = null!;

    [OneTimeSetUp]
    public async Task Install_into_a_temporary_destdir()
    {
        _dest = new TempDir("destdir");
        var (code, _, err) = await ChildProcess.RunAsync(Path.Combine(RepoPaths.Root, "deploy", "install"),
            ["--prefix", "/usr"], new Dictionary<string, string?> { ["DESTDIR"] = _dest.Path },
            TimeSpan.FromMinutes(25));
        Assert.That(code, Is.Zero, "deploy/install failed: " + err);

        // systemd-analyze resolves dependencies (sysinit.target, …) inside --root: give it the host's
        // standard targets, slices and mounts, as a real root filesystem has them.
        var units = Directory.CreateDirectory(Path.Combine(_dest.Path, "usr", "lib", "systemd", "system")).FullName;
        foreach (var pattern in new[] { "*.target", "*.slice", "*.mount" })
            foreach (var f in Directory.EnumerateFiles("/lib/systemd/system", pattern))
                if (!new FileInfo(f).Attributes.HasFlag(FileAttributes.ReparsePoint))
                    File.Copy(f, Path.Combine(units, Path.GetFileName(f)), overwrite: true);
    }

    [OneTimeTearDown]
    public void Cleanup() => _dest.Dispose();

    [TestCase("blktapctrl.service")]
    [TestCase("blktap-xenstored.service")]
    public async Task Systemd_analyze_verifies_the_unit_without_a_complaint(string unit)
    {
        var (code, stdout, stderr) = await ChildProcess.RunAsync("systemd-analyze",
            ["verify", "--root=" + _dest.Path, Path.Combine("lib", "systemd", "system", unit)],
            workingDirectory: _dest.Path);
        Assert.That(code, Is.Zero, stdout + stderr);
        Assert.That((stdout + stderr).Trim(), Is.Empty, "systemd-analyze printed warnings");
    }

    [Test]
    public void Units_point_at_the_installed_programs_and_keep_workers_alive_across_restarts()
    {
        var unit = File.ReadAllText(Path.Combine(_dest.Path, "lib", "systemd", "system", "blktapctrl.service"));
        Assert.That(unit, Does.Contain("ExecStart=/usr/sbin/blktapctrl "));
        Assert.That(unit, Does.Contain("Type=notify"));
        Assert.That(unit, Does.Contain("WatchdogSec="));
        Assert.That(unit, Does.Contain("KillMode=process"), "a controller restart must not kill running tapdisks");
        Assert.That(unit, Does.Not.Contain("@"), "unsubstituted placeholder");
        foreach (var cmd in new[] { "blktapctrl", "tapdisk", "tap-ctl", "vhd-util", "blktap-xenstored" })
            Assert.That(File.Exists(Path.Combine(_dest.Path, "usr", "sbin", cmd)), cmd + " not installed (or dangling link)");
    }

    [Test]
    public void Tapdisk_is_installed_as_one_native_binary()
    {
        var tapdisk = Path.Combine(_dest.Path, "usr", "sbin", "tapdisk");
        var head = new byte[4];
        using (var f = File.OpenRead(tapdisk)) f.ReadExactly(head);
        Assert.That(head, Is.EqualTo(new byte[] { 0x7F, (byte)'E', (byte)'L', (byte)'F' }));
        Assert.That(new FileInfo(tapdisk).LinkTarget, Is.Null, "NativeAOT tapdisk is a file, not a link into lib/");
        Assert.That(File.Exists(Path.Combine(_dest.Path, "usr", "sbin", "tapdisk.dll")), Is.False);
    }

    [Test]
    public async Task Tmpfiles_rules_create_private_run_and_log_directories()
    {
        var (code, _, err) = await ChildProcess.RunAsync("systemd-tmpfiles",
            ["--root=" + _dest.Path, "--create", "blktap.conf"]);
        Assert.That(code, Is.Zero, err);
        var run = new DirectoryInfo(Path.Combine(_dest.Path, "run", "blktap"));
        Assert.That(run.Exists);
        Assert.That(run.UnixFileMode, Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute));
        Assert.That(Directory.Exists(Path.Combine(_dest.Path, "var", "log", "blktap")));
    }

    [Test]
    public async Task Logrotate_accepts_the_rules()
    {
        var state = Path.Combine(_dest.Path, "logrotate.state");
        var (code, stdout, stderr) = await ChildProcess.RunAsync("logrotate",
            ["--debug", "--state", state, Path.Combine(_dest.Path, "etc", "logrotate.d", "blktap")]);
        Assert.That(code, Is.Zero, stdout + stderr);
        Assert.That(stdout + stderr, Does.Not.Contain("error:"));
    }
}
