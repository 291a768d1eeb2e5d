using BlkTapCtrl.Controller.Startup;

namespace BlkTapCtrl.Controller.Tests;

public class CommandLineTests
{
    private static CommandLine.Result Parse(string[] args, string? xenstoredPath = null) =>
        CommandLine.Parse(args, name => name == "XENSTORED_PATH" ? xenstoredPath : null);

    [Test]
    public void Defaults_follow_the_issue()
    {
        var o = Parse([]).Options!;
        Assert.That(o.XenStorePath, Is.EqualTo("/var/run/xenstored/socket"));
        Assert.That(o.TapdiskProgram, Is.EqualTo("tapdisk"));
        Assert.That(o.RunDir, Is.EqualTo("/var/run/blktap"));
        Assert.That(o.LogDir, Is.EqualTo("/var/log/blktap"));
        Assert.That(o.PidFile, Is.EqualTo("/var/run/blktap/blktapctrl.pid"));
        Assert.That(o.SyslogFacility, Is.EqualTo(24), "daemon");
    }

    [Test]
    public void XenStore_path_comes_from_option_then_environment()
    {
        Assert.That(Parse([], "/tmp/xs.sock").Options!.XenStorePath, Is.EqualTo("/tmp/xs.sock"));
        Assert.That(Parse(["--xenstore", "/a/b"], "/tmp/xs.sock").Options!.XenStorePath, Is.EqualTo("/a/b"));
    }

    [Test]
    public void Options_are_taken()
    {
        var o = Parse(["--tapdisk", "/opt/td", "--run-dir", "/r", "--log-dir", "/l", "--pid-file", "/p.pid", "-l", "local3",
            "--pid-timeout", "1.5", "--wait-timeout", "3", "--stop-timeout", "4"]).Options!;
        Assert.That((o.TapdiskProgram, o.RunDir, o.LogDir, o.PidFile, o.SyslogFacility), Is.EqualTo(("/opt/td", "/r", "/l", "/p.pid", 19 << 3)));
        Assert.That((o.PidTimeout, o.WaitTimeout, o.StopTimeout),
            Is.EqualTo((TimeSpan.FromSeconds(1.5), TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(4))));
    }

    [TestCase("daemon", 24)]
    [TestCase("LOCAL0", 128)]
    [TestCase("3", 24)]
    [TestCase("24", 24)]
    [TestCase("184", 184)]
    public void Facility_by_name_or_number(string text, int code) => Assert.That(SyslogFacility.Parse(text), Is.EqualTo(code));

    [TestCase("--bogus")]
    [TestCase("-l", "nosuchfacility")]
    [TestCase("-l", "25")]
    [TestCase("--pid-timeout", "0")]
    [TestCase("--wait-timeout", "abc")]
    [TestCase("extra-argument")]
    public void Bad_usage_exits_22_CA26523(params string[] args)
    {
        var r = Parse(args);
        Assert.That(r.ExitCode, Is.EqualTo(22));
        Assert.That(r.Message, Does.Contain("usage: blktapctrl"));
    }

    [Test]
    public void Help_exits_0()
    {
        var r = Parse(["-h"]);
        Assert.That(r.ExitCode, Is.EqualTo(0));
        Assert.That(r.Message, Does.Contain("--tapdisk"));
    }
}
