using BlkTapCtrl.Diagnostics.Errors;

namespace BlkTapCtrl.Diagnostics.Tests.Errors;

public class ErrorBucketsTests
{
    private static readonly Timeval T = new(1_764_072_000, 123_457); // 2025-11-25 12:00:00.123457 UTC

    [Test]
    public void Repeats_of_one_errno_and_origin_share_a_bucket_with_first_last_and_spread()
    {
        var b = new ErrorBuckets();
        b.Add(-5, "vbd_complete", "ERROR: errno 5 at vbd_complete: req 1: read 0x8 secs to 0x0", T);
        b.Add(5, "vbd_complete", "ERROR: errno 5 at vbd_complete: req 2: read 0x8 secs to 0x8", T + new Timeval(2, 0));
        b.Add(28, "vbd_complete", "ERROR: errno 28 at vbd_complete: req 3", T + new Timeval(1, 0));
        Assert.That(b.Report(TimeZoneInfo.Utc), Is.EqualTo(new[]
        {
            "TAPDISK ERROR: errno 5 at vbd_complete (cnt = 2): [Nov 25 12:00:00.123457/Nov 25 12:00:02.123457/1.414] ERROR: errno 5 at vbd_complete: req 1: read 0x8 secs to 0x0",
            "TAPDISK ERROR: errno 28 at vbd_complete (cnt = 1): [Nov 25 12:00:01.123457/Nov 25 12:00:01.123457/0.000] ERROR: errno 28 at vbd_complete: req 3",
        }));
    }

    [Test]
    public void Errors_beyond_the_bucket_capacity_are_counted_as_dropped()
    {
        var b = new ErrorBuckets();
        for (int i = 0; i < 20; i++)
            b.Add(5, $"origin{i}", "x", T);
        b.Add(5, "origin0", "again", T);
        Assert.That(b.Snapshot(), Has.Count.EqualTo(16));
        Assert.That(b.Snapshot()[0].Occurrences.Count, Is.EqualTo(2));
        Assert.That(b.Dropped, Is.EqualTo(4));
        Assert.That(b.Report(TimeZoneInfo.Utc)[^1], Is.EqualTo("4 other error messages dropped"));
    }

    [Test]
    public void First_message_is_kept_up_to_512_characters()
    {
        var b = new ErrorBuckets();
        b.Add(5, "f", new string('m', 2000), T);
        Assert.That(b.Snapshot()[0].FirstMessage, Has.Length.EqualTo(512));
    }
}
