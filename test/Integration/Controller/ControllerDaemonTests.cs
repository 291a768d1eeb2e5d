using System.Net.Sockets;
using System.Text;
using BlkTapCtrl.Testing;

namespace BlkTapCtrl.Integration.Tests.Controller;

/// <summary>The daemon as a process: exit statuses (CA-26523) and its systemd contract (Type=notify, watchdog).</summary>
[TestFixture]
public class ControllerDaemonTests
{
    [Test]
    public async Task CA26523_exit_status_bad_usage_is_22_and_unreachable_xenstore_is_1()
    {
        using var dir = new TempDir();
        var usage = await ChildProcess.RunAsync(RepoPaths.Executable("blktapctrl"), ["--no-such-option"]);
        Assert.That(usage.Code, Is.EqualTo(22));
        Assert.That(usage.Err, Does.Contain("usage: blktapctrl"));

        var fatal = await ChildProcess.RunAsync(RepoPaths.Executable("blktapctrl"),
            ["--xenstore", dir["missing.sock"], "--run-dir", dir["run"], "--log-dir", dir["log"], "--pid-file", dir["run/p.pid"]],
            timeout: TimeSpan.FromSeconds(60));
        Assert.That(fatal.Code, Is.EqualTo(1), fatal.Err);
        Assert.That(fatal.Err, Does.Contain("attempt 2"), "two connection attempts, as the original");
        Assert.That(File.Exists(dir["run/p.pid"]), Is.False, "pid file removed on exit");
    }

    [Test]
    public async Task Systemd_notify_ready_after_the_backend_watch_watchdog_pings_and_stopping()
    {
        await using var h = await ControllerHarness.StartAsync();
        await h.RetireControllerAsync();

        using var notify = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        string path = h.Dir["notify.sock"];
        notify.Bind(new UnixDomainSocketEndPoint(path));
        var env = new Dictionary<string, string?> { ["NOTIFY_SOCKET"] = path, ["WATCHDOG_USEC"] = "200000" };
        using var ctl = new ChildProcess(RepoPaths.Executable("blktapctrl"),
            ["--xenstore", h.Socket, "--run-dir", h.RunDir, "--log-dir", h.LogDir, "--pid-file", h.PidFile], env);

        var messages = new List<string>();
        var buffer = new byte[512];
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (messages.Count(m => m == "WATCHDOG=1") < 2)
        {
            int n = await notify.ReceiveAsync(buffer, SocketFlags.None, limit.Token);
            messages.Add(Encoding.ASCII.GetString(buffer, 0, n).Trim());
        }
        Assert.That(messages[0], Is.EqualTo("READY=1"), "READY first, once the backend watch is set");
        Assert.That(ctl.StdErr, Does.Contain("watching /local/domain/0/backend/tap"));

        Native.Kill(ctl.Pid, 15);
        while (true)
        {
            int n = await notify.ReceiveAsync(buffer, SocketFlags.None, limit.Token);
            if (Encoding.ASCII.GetString(buffer, 0, n).Trim() == "STOPPING=1") break;
        }
        Assert.That(await ctl.WaitAsync(TimeSpan.FromSeconds(30)), Is.Zero);
    }
}
