using BlkTapCtrl.Diagnostics.Errors;

namespace BlkTapCtrl.Diagnostics.Tests.Errors;

public class TimevalTests
{
    [Test]
    public void Negative_differences_are_normalised_with_positive_microseconds()
    {
        var d = new Timeval(10, 0) - new Timeval(12, 500_000);
        Assert.That((d.Seconds, d.Microseconds), Is.EqualTo((-3L, 500_000)));
        Assert.That(d.ToSecondsDouble(), Is.EqualTo(-2.5));
    }

    [Test]
    public void Division_carries_the_seconds_remainder_into_microseconds()
    {
        Assert.That(new Timeval(3, 0) / 2, Is.EqualTo(new Timeval(1, 500_000)));
        Assert.That(new Timeval(-3, 500_000) / 2, Is.EqualTo(new Timeval(-2, 750_000)), "-2.5 s / 2 = -1.25 s");
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new Timeval(1, 0) / 0);
    }

    [Test]
    public void Round_trips_through_DateTimeOffset_exactly()
    {
        var t = new Timeval(1_764_072_000, 123_457);
        Assert.That(Timeval.FromDateTimeOffset(t.ToDateTimeOffset()), Is.EqualTo(t));
    }
}
