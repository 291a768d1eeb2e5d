using System.Text.RegularExpressions;
using BlkTapCtrl.Testing;

namespace BlkTapCtrl.Integration.Tests.Controller;

/// <summary>
/// blktapctrl's syslog (issue 8): our non-blocking client on a real unix datagram socket the test owns (this
/// machine has no /dev/log), ident <c>BLKTAP-DAEMON[pid]</c>, the facility from <c>-l</c>, and the socket passed on
/// to the workers it spawns. The socket's queue holds only net.unix.max_dgram_qlen (10) datagrams until the test
/// reads, so the controller runs with its syslog blocked for most of each test.
/// </summary>
[TestFixture]
public class ControllerSyslogTests
{
    private const int Local3 = 19 << 3;
    private const int Informational = 6, Error = 3;

    [Test]
    public async Task Blocked_syslog_never_holds_up_the_controller_and_every_line_arrives_in_order_with_ident_and_facility()
    {
        using var sys = new TempDir("cs");
        using var daemon = new FakeSyslogDaemon(sys["log.sock"]);
        await using var h = await ControllerHarness.StartAsync((string?)null, "--syslog-socket", daemon.Path, "-l", "local3");

        // Nobody reads the syslog socket while a VBD is brought up, paused, unpaused and refused.
        string image = h.MakeImage("disk.img", 2048);
        string p = await h.CreateVbdAsync(1, 1, "aio:" + image);
        int worker = ControllerHarness.ParsePid(await h.WaitForKeyAsync(p + "/tapdisk-pid"));
        await h.ToolstackWriteAsync(p + "/pause", "");
        await h.WaitForKeyAsync(p + "/pause-done", TimeSpan.FromSeconds(30));
        await h.ToolstackRemoveAsync(p + "/pause");
        await h.WaitForAbsenceAsync(p + "/pause-done", TimeSpan.FromSeconds(30));
        string bad = await h.CreateVbdAsync(1, 2, "nonsense");
        await h.WaitForKeyAsync(bad + "/tapdisk-error");
        Assert.That(File.ReadAllText($"/proc/{worker}/cmdline").Split('\0'), Does.Contain("--syslog-socket").And.Contain(daemon.Path),
            "the worker logs where the controller does");
        await h.ToolstackWriteAsync(p + "/tapdisk-request", "shutdown-normal");
        await h.WaitUntilAsync(() => Task.FromResult(!ControllerHarness.ProcessExists(worker)), "the worker to exit after CLOSE");

        // Now read: the queued lines flow as the socket drains; the stop's lines and the close report follow.
        var packets = daemon.ReceiveAll(TimeSpan.FromSeconds(1));
        var rest = Task.Run(() => daemon.ReceiveAll(TimeSpan.FromSeconds(3)));
        Assert.That(await h.StopControllerAsync(), Is.Zero);
        packets.AddRange(await rest);

        var ours = packets.Where(d => d.Contains($" BLKTAP-DAEMON[{h.Controller.Pid}]: ", StringComparison.Ordinal)).ToList();
        Assert.That(ours, Has.Count.GreaterThan(10), "more lines than the socket could hold while blocked:\n" + string.Join("\n", packets));

        // RFC 3164 with PRI = local3 | severity.
        Assert.That(ours, Has.All.Match(@"^<\d+>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d BLKTAP-DAEMON\[\d+\]: "));
        Assert.That(ours.Any(d => d.StartsWith($"<{Local3 | Informational}>", StringComparison.Ordinal)
                                  && d.Contains("blktapctrl: dom0 is domain 0; watching /local/domain/0/backend/tap", StringComparison.Ordinal)), Is.True,
            "informational lines at local3.info, strings rendered literally:\n" + string.Join("\n", ours));
        Assert.That(ours.Any(d => d.StartsWith($"<{Local3 | Error}>", StringComparison.Ordinal)
                                  && d.Contains("gathering parameters: params 'nonsense' has no ':'", StringComparison.Ordinal)), Is.True,
            "errors at local3.err");

        // In order: the syslog lines are exactly the console's Information-and-above lines, in the same order.
        var texts = ours.Select(FakeSyslogDaemon.Text)
            .Where(t => !t.StartsWith("blktapctrl-syslog: ", StringComparison.Ordinal))
            .Select(t => Regex.Replace(t, @"^(ERROR: errno \d+ at )?[A-Za-z]+: ", "")).ToList();
        var console = h.Log.Split('\n')
            .Select(l => Regex.Match(l, @"^\S+ \S+ \[(INF|WRN|ERR|FTL)\] (.*)$"))
            .Where(m => m.Success).Select(m => m.Groups[2].Value.TrimEnd('\r')).ToList();
        Assert.That(texts, Is.EqualTo(console), "syslog has every line of the log, in the same order");
        Assert.That(FakeSyslogDaemon.Text(ours[^1]), Does.StartWith("blktapctrl-syslog: ").And.Contain(" messages, ").And.EndWith("dropped: 0"),
            "the close report comes last");
    }
}
