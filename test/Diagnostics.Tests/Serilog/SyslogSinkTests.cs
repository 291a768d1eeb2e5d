using BlkTapCtrl.Diagnostics.Serilog;
using BlkTapCtrl.Diagnostics.Syslog;
using BlkTapCtrl.Testing;
using Serilog;

namespace BlkTapCtrl.Diagnostics.Tests.Serilog;

public class SyslogSinkTests
{
    [Test]
    public void Serilog_events_become_syslog_lines_with_severity_origin_and_errno()
    {
        using var dir = new TempDir();
        using var daemon = new FakeSyslogDaemon(dir["log"]);
        using var client = new SyslogClient(new SyslogClientOptions
        {
            SocketPath = daemon.Path, Ident = "blktapctrl", ProcessId = 9,
            Clock = new FixedClock(new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero)),
        });
        using (var log = new LoggerConfiguration().MinimumLevel.Debug().WriteTo.NonBlockingSyslog(client).CreateLogger())
        {
            log.ForContext("SourceContext", "BlkTapCtrl.Controller.Channels.Channel")
                .Information("channel {Minor} opened on {Path}", 3, "/run/x"); // strings literal, not quoted
            log.ForContext(EventText.FunctionProperty, "vbd_complete")
                .ForContext(EventText.ErrnoProperty, -28)
                .Error("req {Id}: write 0x{Secs:x} secs to 0x{Sector:x}", 4, 8, 0x100);
            log.Debug("below the sink's level");
        }
        Assert.That(daemon.ReceiveAll(TimeSpan.FromMilliseconds(200)), Is.EqualTo(new[]
        {
            "<30>Jan  2 03:04:05 blktapctrl[9]: Channel: channel 3 opened on /run/x",
            "<27>Jan  2 03:04:05 blktapctrl[9]: ERROR: errno 28 at vbd_complete: req 4: write 0x8 secs to 0x100",
        }));
    }
}
