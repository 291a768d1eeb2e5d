using BlkTapCtrl.Diagnostics.Syslog;
using BlkTapCtrl.Testing;

namespace BlkTapCtrl.Diagnostics.Tests.Syslog;

/// <summary>CA-34846 non-blocking syslog: never blocks; EAGAIN ⇒ ring, ordered delivery; overflow ⇒ "N messages dropped".</summary>
public class SyslogClientTests
{
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(200);

    private static SyslogClient Client(string path, int ringBytes = 64 * 1024) => new(new SyslogClientOptions
    {
        SocketPath = path,
        Ident = "tapdisk",
        ProcessId = 77,
        RingBytes = ringBytes,
        CloseDrainTimeout = TimeSpan.FromMilliseconds(100),
        Clock = new FixedClock(new DateTimeOffset(2026, 11, 25, 12, 0, 0, TimeSpan.Zero)),
    });

    /// <summary>Reads everything, telling the client whenever the socket may be writable, until it has nothing queued.</summary>
    private static List<string> DrainThroughClient(FakeSyslogDaemon daemon, SyslogClient client)
    {
        var got = new List<string>();
        using var pump = new SyslogWritablePump(client);
        for (int spins = 0; spins < 100_000; spins++)
        {
            bool received = false;
            while (daemon.Receive(TimeSpan.Zero) is { } s)
            {
                got.Add(FakeSyslogDaemon.Text(s));
                received = true;
            }
            if (!pump.PumpOnce(0) && !received)
                break;
        }
        got.AddRange(daemon.ReceiveAll(Quiet).Select(FakeSyslogDaemon.Text));
        return got;
    }

    [Test]
    public void Message_reaches_the_daemon_as_an_rfc3164_datagram()
    {
        using var dir = new TempDir();
        using var daemon = new FakeSyslogDaemon(dir["log"]);
        using var client = Client(daemon.Path);
        client.Log(SyslogSeverity.Error, "ERROR: errno 5 at vbd: boom");
        Assert.That(daemon.Receive(TimeSpan.FromSeconds(5)), Is.EqualTo("<27>Nov 25 12:00:00 tapdisk[77]: ERROR: errno 5 at vbd: boom"));
        Assert.That(client.WantsWritable, Is.False);
        Assert.That(client.Statistics.Transmits, Is.EqualTo(1));
    }

    [Test]
    public void CA_34846_unread_daemon_never_blocks_messages_queue_and_arrive_in_order()
    {
        using var dir = new TempDir();
        using var daemon = new FakeSyslogDaemon(dir["log"]);
        using var client = Client(daemon.Path);
        var changes = new List<bool>();
        client.WantsWritableChanged += changes.Add;

        // The kernel queues only a handful of datagrams for an unread socket; the rest must wait in our ring.
        const int count = 300;
        for (int i = 0; i < count; i++)
            client.Log(SyslogSeverity.Warning, $"message {i}");

        var stats = client.Statistics;
        Assert.That(stats.Queued, Is.GreaterThan(0), "the daemon pushed back and messages queued");
        Assert.That(stats.Dropped, Is.Zero);
        Assert.That(client.WantsWritable, Is.True);
        Assert.That(changes, Is.EqualTo(new[] { true }), "the loop is asked to watch for WRITE once");

        var got = DrainThroughClient(daemon, client);
        Assert.That(got, Is.EqualTo(Enumerable.Range(0, count).Select(i => $"message {i}")));
        Assert.That(client.WantsWritable, Is.False);
        Assert.That(changes, Is.EqualTo(new[] { true, false }));
        Assert.That(client.Statistics.Transmits, Is.EqualTo(count));
    }

    [Test]
    public void CA_34846_deferred_lines_leave_together_at_the_flush_in_order_with_immediate_ones_and_through_a_blocked_daemon()
    {
        using var dir = new TempDir();
        using var daemon = new FakeSyslogDaemon(dir["log"]);
        using var client = Client(daemon.Path);
        var changes = new List<bool>();
        client.WantsWritableChanged += changes.Add;

        // The datapath queues its error lines; nothing is sent until the loop's pass ends.
        client.LogDeferred(SyslogSeverity.Error, "first");
        client.LogDeferred(SyslogSeverity.Error, "second");
        Assert.That(daemon.Receive(TimeSpan.FromMilliseconds(100)), Is.Null, "queued, not sent yet");
        Assert.That(client.Statistics.Queued, Is.EqualTo(2));
        client.Flush();
        Assert.That(daemon.ReceiveAll(Quiet).Select(FakeSyslogDaemon.Text), Is.EqualTo(new[] { "first", "second" }));
        Assert.That(client.Statistics.Transmits, Is.EqualTo(2));

        // An immediate line never overtakes deferred ones: they leave first.
        client.LogDeferred(SyslogSeverity.Error, "third");
        client.Log(SyslogSeverity.Warning, "fourth");
        Assert.That(daemon.ReceiveAll(Quiet).Select(FakeSyslogDaemon.Text), Is.EqualTo(new[] { "third", "fourth" }));

        // A daemon that does not read: the flush leaves the rest queued and asks the loop to watch for WRITE once.
        const int count = 300;
        for (int i = 0; i < count; i++)
            client.LogDeferred(SyslogSeverity.Error, $"burst {i}");
        client.Flush();
        Assert.That(client.WantsWritable, Is.True);
        Assert.That(changes, Is.EqualTo(new[] { true }));
        client.Flush(); // a later pass does not retry: the WRITE event does
        var got = DrainThroughClient(daemon, client);
        Assert.That(got, Is.EqualTo(Enumerable.Range(0, count).Select(i => $"burst {i}")));
        Assert.That(changes, Is.EqualTo(new[] { true, false }));
        Assert.That(client.Statistics.Transmits, Is.EqualTo(4 + count));
        Assert.That(client.Statistics.Dropped, Is.Zero);
    }

    [Test]
    public void CA_34846_flood_drops_when_the_ring_is_full_and_reports_the_drop_after_the_survivors()
    {
        using var dir = new TempDir();
        using var daemon = new FakeSyslogDaemon(dir["log"]);
        using var client = Client(daemon.Path, ringBytes: 2048);
        const int count = 1000;
        for (int i = 0; i < count; i++)
            client.Log(SyslogSeverity.Warning, $"flood {i}");
        var stats = client.Statistics;
        Assert.That(stats.Dropped, Is.GreaterThan(0));
        Assert.That(stats.Messages, Is.EqualTo(count));

        var got = DrainThroughClient(daemon, client);
        int survivors = count - (int)stats.Dropped;
        Assert.That(got.Take(survivors), Is.EqualTo(Enumerable.Range(0, survivors).Select(i => $"flood {i}")),
            "the first messages survive, in order");
        Assert.That(got.Skip(survivors), Is.EqualTo(new[] { $"tapdisk-syslog: {stats.Dropped} messages dropped" }));

        client.Log(SyslogSeverity.Warning, "after the flood");
        Assert.That(FakeSyslogDaemon.Text(daemon.Receive(TimeSpan.FromSeconds(5))!), Is.EqualTo("after the flood"));
    }

    [Test]
    public void Missing_daemon_counts_failures_and_connects_lazily_when_it_appears()
    {
        using var dir = new TempDir();
        using var client = Client(dir["log"]);
        client.Log(SyslogSeverity.Error, "nobody listens");
        Assert.That(client.Statistics.Failed, Is.EqualTo(1));
        Assert.That(client.WantsWritable, Is.False, "a missing daemon is a failure, not a reason to queue");

        using var daemon = new FakeSyslogDaemon(dir["log"]);
        client.Log(SyslogSeverity.Error, "now it does");
        Assert.That(FakeSyslogDaemon.Text(daemon.Receive(TimeSpan.FromSeconds(5))!), Is.EqualTo("now it does"));
    }

    [Test]
    public void Restarted_daemon_is_reconnected_and_the_message_resent_once()
    {
        using var dir = new TempDir();
        using var client = Client(dir["log"]);
        using (var first = new FakeSyslogDaemon(dir["log"]))
        {
            client.Log(SyslogSeverity.Error, "to the first daemon");
            Assert.That(first.Receive(TimeSpan.FromSeconds(5)), Is.Not.Null);
        }
        using var second = new FakeSyslogDaemon(dir["log"]);
        client.Log(SyslogSeverity.Error, "to the second daemon");
        Assert.That(FakeSyslogDaemon.Text(second.Receive(TimeSpan.FromSeconds(5))!), Is.EqualTo("to the second daemon"));
        Assert.That(client.Statistics.Failed, Is.Zero);
    }

    [Test]
    public void Close_reports_messages_bytes_xmits_failed_dropped_and_drains_what_it_can()
    {
        using var dir = new TempDir();
        using var daemon = new FakeSyslogDaemon(dir["log"]);
        var client = Client(daemon.Path);
        client.Log(SyslogSeverity.Warning, "one");
        client.Log(SyslogSeverity.Warning, "two");
        var stats = client.Statistics;
        client.Dispose();
        var got = daemon.ReceiveAll(Quiet).Select(FakeSyslogDaemon.Text).ToList();
        Assert.That(got, Is.EqualTo(new[]
        {
            "one", "two",
            $"tapdisk-syslog: 2 messages, {stats.Bytes} bytes, xmits: 2, failed: 0, dropped: 0",
        }));
        client.Log(SyslogSeverity.Warning, "after close is ignored");
        Assert.That(daemon.Receive(Quiet), Is.Null);
    }

    [Test]
    public void Close_with_a_blocked_daemon_gives_up_after_its_drain_timeout()
    {
        using var dir = new TempDir();
        using var daemon = new FakeSyslogDaemon(dir["log"]);
        var client = Client(daemon.Path);
        for (int i = 0; i < 100; i++)
            client.Log(SyslogSeverity.Warning, $"m{i}");
        var started = DateTime.UtcNow;
        client.Dispose();
        Assert.That(DateTime.UtcNow - started, Is.LessThan(TimeSpan.FromSeconds(5)), "close does not hang on a stuck daemon");
    }

    [Test]
    public void Pump_task_drains_in_the_background_for_owners_without_an_event_loop()
    {
        using var dir = new TempDir();
        using var daemon = new FakeSyslogDaemon(dir["log"]);
        using var client = Client(daemon.Path);
        using var pump = new SyslogWritablePump(client);
        using var cts = new CancellationTokenSource();
        var running = Task.Factory.StartNew(() => pump.RunAsync(cts.Token), TaskCreationOptions.LongRunning).Unwrap();
        for (int i = 0; i < 200; i++)
            client.Log(SyslogSeverity.Warning, $"p{i}");
        var got = new List<string>();
        while (got.Count < 200 && daemon.Receive(TimeSpan.FromSeconds(5)) is { } s)
            got.Add(FakeSyslogDaemon.Text(s));
        cts.Cancel();
        Assert.That(running.Wait(TimeSpan.FromSeconds(5)), Is.True);
        Assert.That(got, Is.EqualTo(Enumerable.Range(0, 200).Select(i => $"p{i}")));
    }

    [Test]
    public void Socket_path_longer_than_sun_path_is_a_clear_error()
    {
        var ex = Assert.Throws<ArgumentException>(() => Client("/tmp/" + new string('a', 200)));
        Assert.That(ex!.Message, Does.Contain("unix socket path must be"));
    }
}
