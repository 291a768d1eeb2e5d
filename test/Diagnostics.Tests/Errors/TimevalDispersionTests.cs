using BlkTapCtrl.Diagnostics.Errors;

namespace BlkTapCtrl.Diagnostics.Tests.Errors;

public class TimevalDispersionTests
{
    // An absolute epoch time with microseconds: a double holds it only to ~0.2 µs.
    private static readonly Timeval T = new(1_764_072_000, 123_457);

    [Test]
    public void CA_27472_first_last_timestamps_add_t_and_t_plus_2_gives_min_t_max_t_plus_2_mean_t_plus_1()
    {
        var d = new TimevalDispersion();
        d.Add(T);
        d.Add(T + new Timeval(2, 0));
        Assert.That(d.Count, Is.EqualTo(2));
        Assert.That(d.Min, Is.EqualTo(T));
        Assert.That(d.Max, Is.EqualTo(T + new Timeval(2, 0)));
        Assert.That(d.Mean, Is.EqualTo(T + new Timeval(1, 0)));
        Assert.That(d.StandardDeviation, Is.EqualTo(Math.Sqrt(2)).Within(1e-9));
    }

    [Test]
    public void CA_27472_timeval_dispersion_mean_of_absolute_epoch_samples_is_exact_to_the_microsecond()
    {
        var d = new TimevalDispersion();
        // t, t+1µs, ..., t+1000µs, added out of order: the mean is exactly t+500µs.
        var samples = Enumerable.Range(0, 1001).Select(i => T + new Timeval(0, i)).OrderBy(x => (x.Microseconds * 7919) % 1001).ToList();
        foreach (var s in samples)
            d.Add(s);
        Assert.That(d.Mean, Is.EqualTo(T + new Timeval(0, 500)));
        Assert.That(d.Min, Is.EqualTo(T));
        Assert.That(d.Max, Is.EqualTo(T + new Timeval(0, 1000)));

        // Samples a microsecond apart whose mean falls on a half microsecond round down, never drift.
        var e = new TimevalDispersion();
        e.Add(T);
        e.Add(T + new Timeval(0, 1));
        e.Add(T + new Timeval(0, 1));
        e.Add(T + new Timeval(0, 2));
        e.Add(T + new Timeval(0, 3));
        Assert.That(e.Mean, Is.EqualTo(T + new Timeval(0, 1)), "7 µs / 5 = 1.4 µs ⇒ 1 µs");
    }

    [Test]
    public void Standard_deviation_of_seconds_apart_samples()
    {
        var d = new TimevalDispersion();
        foreach (var s in new[] { 2, 4, 4, 4, 5, 5, 7, 9 })
            d.Add(T + new Timeval(s, 0));
        Assert.That(d.Mean, Is.EqualTo(T + new Timeval(5, 0)));
        Assert.That(d.StandardDeviation, Is.EqualTo(Math.Sqrt(32.0 / 7)).Within(1e-6), "the running mean is kept to the µs");
    }
}
