using System.Text;
using BlkTapCtrl.Diagnostics.Syslog;

namespace BlkTapCtrl.Diagnostics.Tests.Syslog;

public class SyslogPacketWriterTests
{
    private static readonly DateTimeOffset Nov5 = new(2026, 11, 5, 9, 3, 7, 123, TimeSpan.Zero);

    private static string Write(SyslogPacketWriter writer, SyslogSeverity severity, string text, DateTimeOffset at)
    {
        var buf = new byte[SyslogPacketWriter.MaxPacketBytes];
        int n = writer.Write(buf, severity, at, text);
        return Encoding.UTF8.GetString(buf, 0, n);
    }

    [Test]
    public void Rfc3164_packet_has_pri_space_padded_day_time_ident_and_pid()
    {
        var w = new SyslogPacketWriter(SyslogPacketFormat.Rfc3164, SyslogFacility.Daemon, "tapdisk", 4242);
        Assert.That(Write(w, SyslogSeverity.Error, "req 3: read 0x8 secs to 0x10", Nov5),
            Is.EqualTo("<27>Nov  5 09:03:07 tapdisk[4242]: req 3: read 0x8 secs to 0x10"));
        Assert.That(Write(w, SyslogSeverity.Warning, "x", new DateTimeOffset(2026, 12, 25, 23, 59, 59, TimeSpan.Zero)),
            Is.EqualTo("<28>Dec 25 23:59:59 tapdisk[4242]: x"));
    }

    [Test]
    public void Rfc5424_packet_has_version_iso_time_host_app_and_procid()
    {
        var w = new SyslogPacketWriter(SyslogPacketFormat.Rfc5424, SyslogFacility.Local3, "blktapctrl", 7);
        var packet = Write(w, SyslogSeverity.Informational, "hello", Nov5);
        Assert.That(packet, Does.StartWith("<158>1 2026-11-05T09:03:07.123000+00:00 "));
        Assert.That(packet, Does.EndWith(" blktapctrl 7 - - hello"));
    }

    [Test]
    public void Long_text_is_truncated_to_1024_bytes_on_a_character_boundary()
    {
        var w = new SyslogPacketWriter(SyslogPacketFormat.Rfc3164, SyslogFacility.Daemon, "tapdisk", 1);
        var buf = new byte[4096];
        int n = w.Write(buf, SyslogSeverity.Error, Nov5, new string('é', 2000));
        Assert.That(n, Is.LessThanOrEqualTo(SyslogPacketWriter.MaxPacketBytes));
        Assert.That(n, Is.GreaterThan(SyslogPacketWriter.MaxPacketBytes - 2));
        var text = Encoding.UTF8.GetString(buf, 0, n);
        Assert.That(text, Does.Not.Contain("\uFFFD"), "no split character");
    }

    [Test]
    public void Utf8_text_gives_the_same_packet_and_is_cut_before_a_character_that_does_not_fit()
    {
        var w = new SyslogPacketWriter(SyslogPacketFormat.Rfc3164, SyslogFacility.Daemon, "tapdisk", 1);
        foreach (string text in new[] { "req 3: read 0x8 secs to 0x10", "é" + new string('x', 1000) + "€€€€€€€€", new string('€', 400) })
        {
            var a = new byte[2048];
            var b = new byte[2048];
            int na = w.Write(a, SyslogSeverity.Error, Nov5, text);
            int nb = w.WriteUtf8(b, SyslogSeverity.Error, Nov5, Encoding.UTF8.GetBytes(text));
            Assert.That(b.AsSpan(0, nb).ToArray(), Is.EqualTo(a.AsSpan(0, na).ToArray()), text[..10]);
            Assert.That(nb, Is.LessThanOrEqualTo(SyslogPacketWriter.MaxPacketBytes));
            Assert.That(Encoding.UTF8.GetString(b, 0, nb), Does.Not.Contain("\uFFFD"), "no half character");
        }
    }

    [Test]
    public void Ident_must_be_sensible()
    {
        Assert.Throws<ArgumentException>(() => new SyslogPacketWriter(SyslogPacketFormat.Rfc3164, SyslogFacility.Daemon, "", 1));
    }
}
