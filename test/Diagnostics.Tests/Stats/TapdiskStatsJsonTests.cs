using System.Text;
using BlkTapCtrl.Diagnostics.Stats;
using BlkTapCtrl.Diagnostics.Syslog;

namespace BlkTapCtrl.Diagnostics.Tests.Stats;

public class TapdiskStatsJsonTests
{
    private static TapdiskStats Sample() => new()
    {
        Pid = 4321,
        Time = new DateTimeOffset(2026, 11, 25, 12, 0, 0, TimeSpan.Zero).AddTicks(1234560),
        Vbds =
        [
            new VbdStats
            {
                Cookie = 3, Flags = "RetryNeeded", Received = 10, Returned = 9, Errors = 1, Retries = 2,
                KicksIn = 3, KicksOut = 2, Kicked = 9, New = 0, Pending = 1, Failed = 0, Completed = 0,
                IdleMicroseconds = 1500, Images = ["vhd:/srv/leaf.vhd", "vhd:/srv/base.vhd"],
            },
        ],
        Log = new LogFileStats("/var/log/blktap/TAPDISK.4321.tmp", 1, false),
        Syslog = new SyslogStats("/dev/log", new SyslogStatistics(5, 400, 3, 1, 1, 0)),
        ErrorBuckets = [new ErrorBucketStats(28, "vbd", 2, 1_764_072_000, 123_457, 1_764_072_002, 123_457, 1.414214, "ERROR: x")],
        ErrorBucketsDropped = 4,
        Wakeups = 200,
        WakeupDump = ["index: ipc rfd:8 wfd:10 aio:20 other:0", "[72/8]: 0.000001:8"],
    };

    [Test]
    public void Snapshot_round_trips_through_json()
    {
        var parsed = TapdiskStatsJson.Parse(TapdiskStatsJson.Serialize(Sample()));
        var expected = Sample();
        // Records compare lists by reference: the chain is compared by content, the rest as a record.
        Assert.That(parsed.Vbds.Single().Images, Is.EqualTo(expected.Vbds.Single().Images));
        Assert.That(parsed.Vbds.Single() with { Images = expected.Vbds.Single().Images }, Is.EqualTo(expected.Vbds.Single()));
        Assert.That(parsed.ErrorBuckets.Single(), Is.EqualTo(expected.ErrorBuckets.Single()));
        Assert.That(parsed.WakeupDump, Is.EqualTo(expected.WakeupDump));
        Assert.That((parsed.Pid, parsed.Time, parsed.Log, parsed.Syslog, parsed.ErrorBucketsDropped, parsed.Wakeups),
            Is.EqualTo((expected.Pid, expected.Time, expected.Log, expected.Syslog, expected.ErrorBucketsDropped, expected.Wakeups)));
    }

    [Test]
    public void Field_names_are_the_documented_ones()
    {
        var json = Encoding.UTF8.GetString(TapdiskStatsJson.Serialize(Sample()));
        foreach (var name in new[] { "\"version\": 1", "\"kicksIn\": 3", "\"queues\"", "\"idleMicroseconds\": 1500",
                     "\"xmits\": 3", "\"errorBuckets\"", "\"microseconds\": 123457", "\"wakeups\"", "\"time\": \"2026-11-25T12:00:00.123456Z\"" })
            Assert.That(json, Does.Contain(name));
    }

    [Test]
    public void A_snapshot_without_images_from_an_older_worker_reads_as_an_unknown_chain()
    {
        var json = Encoding.UTF8.GetString(TapdiskStatsJson.Serialize(Sample()));
        int start = json.IndexOf("\"images\"", StringComparison.Ordinal);
        int end = json.IndexOf(']', start) + 1;
        json = json.Remove(start, end - start).Replace(",\n      \n", "\n", StringComparison.Ordinal);
        json = System.Text.RegularExpressions.Regex.Replace(json, @",\s*}", "}");
        Assert.That(TapdiskStatsJson.Parse(Encoding.UTF8.GetBytes(json)).Vbds.Single().Images, Is.Empty);
        var bad = Encoding.UTF8.GetString(TapdiskStatsJson.Serialize(Sample())).Replace("\"vhd:/srv/base.vhd\"", "7", StringComparison.Ordinal);
        Assert.That(() => TapdiskStatsJson.Parse(Encoding.UTF8.GetBytes(bad)), Throws.TypeOf<FormatException>().With.Message.Contains("images"));
    }

    [Test]
    public void Missing_or_wrong_fields_are_named_in_the_error()
    {
        var json = Encoding.UTF8.GetString(TapdiskStatsJson.Serialize(Sample())).Replace("\"pid\": 4321", "\"pid\": \"x\"", StringComparison.Ordinal);
        var ex = Assert.Throws<FormatException>(() => TapdiskStatsJson.Parse(Encoding.UTF8.GetBytes(json)));
        Assert.That(ex!.Message, Does.Contain("'pid'"));
        ex = Assert.Throws<FormatException>(() => TapdiskStatsJson.Parse("{\"version\":2}"u8));
        Assert.That(ex!.Message, Does.Contain("version 2"));
    }
}
