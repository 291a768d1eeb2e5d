using System.Collections.Concurrent;
using System.Text;
using BlkTapCtrl.Protocol.XenStore;
using BlkTapCtrl.XenStore.Client;

namespace BlkTapCtrl.XenStore.Tests.Client;

/// <summary>Client multiplexing behaviour against a scripted daemon on a real unix socket.</summary>
public class XenStoreClientTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    [Test]
    public async Task Replies_arriving_in_reverse_order_complete_the_calls_they_belong_to()
    {
        var held = new List<(ScriptedDaemon.Peer, XsHeader, string)>();
        await using var daemon = new ScriptedDaemon(async (peer, h, payload) =>
        {
            var path = Encoding.UTF8.GetString(payload).TrimEnd('\0');
            lock (held) held.Add((peer, h, path));
            if (held.Count == 10)
            {
                for (int i = held.Count - 1; i >= 0; i--)
                    await held[i].Item1.ReplyAsync(held[i].Item2, "value of " + held[i].Item3);
            }
        });
        await using var client = await XenStoreClient.ConnectAsync(daemon.SocketPath);
        var calls = Enumerable.Range(0, 10).Select(i => client.ReadAsync("/n" + i)).ToArray();
        var values = await Task.WhenAll(calls).WaitAsync(Wait);
        Assert.That(values, Is.EqualTo(Enumerable.Range(0, 10).Select(i => "value of /n" + i)));
    }

    [Test]
    public async Task An_error_reply_throws_with_errno_operation_and_path()
    {
        await using var daemon = new ScriptedDaemon((peer, h, _) => peer.ErrorAsync(h, XsError.ENOENT));
        await using var client = await XenStoreClient.ConnectAsync(daemon.SocketPath);
        var e = Assert.ThrowsAsync<XenStoreException>(() => client.ReadAsync("/missing"));
        Assert.That(e!.Error, Is.EqualTo(XsError.ENOENT));
        Assert.That(e.Errno, Is.EqualTo(2));
        Assert.That(e.Message, Is.EqualTo("xenstore READ /missing failed: ENOENT"));
        Assert.That(await client.TryReadAsync("/missing").WaitAsync(Wait), Is.Null);
    }

    [Test]
    public async Task Watch_events_queue_per_token_and_never_hold_up_replies()
    {
        await using var daemon = new ScriptedDaemon(async (peer, h, payload) =>
        {
            if (h.Type == XsMessageType.Watch)
            {
                var parts = XsPayload.Strings(payload);
                await peer.ReplyAsync(h, "OK\0");
                // A burst of events nobody is reading yet, for this watch and for an unknown token.
                for (int i = 0; i < 1000; i++)
                    await peer.SendAsync(XsMessageType.WatchEvent, 0, 0, Encoding.UTF8.GetBytes($"{parts[0]}/{i}\0{parts[1]}\0"));
                await peer.SendAsync(XsMessageType.WatchEvent, 0, 0, "/x\0nobody\0"u8.ToArray());
            }
            else
            {
                await peer.ReplyAsync(h, "v");
            }
        });
        await using var client = await XenStoreClient.ConnectAsync(daemon.SocketPath);
        await using var a = await client.WatchAsync("/a", "ta");
        await using var b = await client.WatchAsync("/b", "tb");
        // Replies still flow although 2000 events sit unread.
        Assert.That(await client.ReadAsync("/r").WaitAsync(Wait), Is.EqualTo("v"));

        var first = await a.Events.ReadAsync().AsTask().WaitAsync(Wait);
        Assert.That(first, Is.EqualTo(new XenStoreWatchEvent("/a/0", "ta")));
        int countB = 0;
        await foreach (var e in b.ReadAllAsync().WithCancellation(new CancellationTokenSource(Wait).Token))
        {
            Assert.That(e.Token, Is.EqualTo("tb"));
            Assert.That(e.Path, Is.EqualTo("/b/" + countB));
            if (++countB == 1000) break;
        }
    }

    [Test]
    public async Task A_lost_connection_fails_every_pending_call_with_connection_lost()
    {
        int received = 0;
        await using var daemon = new ScriptedDaemon((peer, h, _) =>
        {
            if (Interlocked.Increment(ref received) == 5) peer.Close();
            return Task.CompletedTask;
        });
        await using var client = await XenStoreClient.ConnectAsync(daemon.SocketPath);
        var lost = new TaskCompletionSource<Exception>();
        client.ConnectionLost += e => lost.TrySetResult(e);
        var calls = Enumerable.Range(0, 5).Select(i => client.ReadAsync("/p" + i)).ToArray();
        foreach (var c in calls)
        {
            var e = Assert.ThrowsAsync<XenStoreConnectionLostException>(() => c.WaitAsync(Wait));
            Assert.That(e!.Message, Does.Contain(daemon.SocketPath));
        }
        await lost.Task.WaitAsync(Wait);
        Assert.That(client.IsConnected, Is.False);
        Assert.ThrowsAsync<XenStoreConnectionLostException>(() => client.ReadAsync("/after"));
    }

    [Test]
    public async Task Reconnect_registers_every_watch_again()
    {
        var watches = new ConcurrentQueue<string>();
        await using var daemon = new ScriptedDaemon(async (peer, h, payload) =>
        {
            if (h.Type == XsMessageType.Watch)
            {
                var parts = XsPayload.Strings(payload);
                watches.Enqueue(parts[0] + "|" + parts[1]);
                await peer.ReplyAsync(h, "OK\0");
                await peer.SendAsync(XsMessageType.WatchEvent, 0, 0, Encoding.UTF8.GetBytes($"{parts[0]}\0{parts[1]}\0"));
            }
            else await peer.ReplyAsync(h, "OK\0");
        });
        await using var client = await XenStoreClient.ConnectAsync(new XenStoreClientOptions { Path = daemon.SocketPath, ReconnectAutomatically = true });
        var reconnected = new TaskCompletionSource();
        client.Reconnected += () => reconnected.TrySetResult();
        await using var w = await client.WatchAsync("/local/domain/0/backend/tap", "backend");
        Assert.That((await w.Events.ReadAsync().AsTask().WaitAsync(Wait)).Path, Is.EqualTo("/local/domain/0/backend/tap"));

        daemon.DropAll();
        await reconnected.Task.WaitAsync(Wait);
        Assert.That((await w.Events.ReadAsync().AsTask().WaitAsync(Wait)).Token, Is.EqualTo("backend"), "initial event fires again after re-registration");
        Assert.That(watches, Is.EqualTo(new[] { "/local/domain/0/backend/tap|backend", "/local/domain/0/backend/tap|backend" }));
        Assert.That(daemon.Connections, Is.EqualTo(2));
        Assert.That(client.IsConnected, Is.True);
    }

    [Test]
    public async Task A_call_without_reply_times_out_and_a_cancelled_call_ends_at_once()
    {
        await using var daemon = new ScriptedDaemon((_, _, _) => Task.CompletedTask);
        await using var client = await XenStoreClient.ConnectAsync(new XenStoreClientOptions
        {
            Path = daemon.SocketPath,
            RequestTimeout = TimeSpan.FromMilliseconds(300),
        });
        var e = Assert.ThrowsAsync<TimeoutException>(() => client.ReadAsync("/slow").WaitAsync(Wait));
        Assert.That(e!.Message, Does.Contain("no reply within"));

        using var cts = new CancellationTokenSource();
        var call = client.ReadAsync("/never", cts.Token);
        cts.Cancel();
        Assert.CatchAsync<OperationCanceledException>(() => call.WaitAsync(Wait));
    }

    /// <summary>
    /// Timeouts come from one timer armed to the earliest deadline (no periodic tick): a call sent later
    /// than another still gets its own full timeout after the timer fired for the first, an answered call in
    /// between is untouched, and no call fails before its deadline.
    /// </summary>
    [Test]
    public async Task Each_call_times_out_at_its_own_deadline_with_the_timer_re_armed_between()
    {
        await using var daemon = new ScriptedDaemon(async (peer, h, payload) =>
        {
            if (h.Type == XsMessageType.Read && Encoding.UTF8.GetString(payload).TrimEnd('\0') == "/fast")
                await peer.ReplyAsync(h, "v");
        });
        var timeout = TimeSpan.FromMilliseconds(400);
        await using var client = await XenStoreClient.ConnectAsync(new XenStoreClientOptions { Path = daemon.SocketPath, RequestTimeout = timeout });
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var first = client.ReadAsync("/slow1");
        var firstFailed = first.ContinueWith(_ => clock.Elapsed, TaskScheduler.Default);
        await Task.Delay(250);
        var secondSent = clock.Elapsed;
        var second = client.ReadAsync("/slow2");
        var secondFailed = second.ContinueWith(_ => clock.Elapsed, TaskScheduler.Default);
        Assert.That(await client.ReadAsync("/fast").WaitAsync(Wait), Is.EqualTo("v"));

        // The client's own TimeoutException (WaitAsync's would say nothing of a reply).
        Assert.That(Assert.ThrowsAsync<TimeoutException>(() => first.WaitAsync(Wait))!.Message, Does.Contain("no reply within"));
        Assert.That(Assert.ThrowsAsync<TimeoutException>(() => second.WaitAsync(Wait))!.Message, Does.Contain("no reply within"));
        var margin = TimeSpan.FromMilliseconds(5); // the deadline clock counts whole milliseconds
        Assert.That(await firstFailed, Is.GreaterThanOrEqualTo(timeout - margin), "the first call ran its full timeout");
        Assert.That(await secondFailed - secondSent, Is.GreaterThanOrEqualTo(timeout - margin), "the later call ran its full timeout too");
        Assert.That(await client.ReadAsync("/fast").WaitAsync(Wait), Is.EqualTo("v"), "the connection stays usable");
    }

    [Test]
    public async Task RunInTransaction_starts_over_after_EAGAIN_at_commit()
    {
        int commits = 0;
        uint nextTx = 100;
        await using var daemon = new ScriptedDaemon(async (peer, h, payload) =>
        {
            switch (h.Type)
            {
                case XsMessageType.TransactionStart:
                    await peer.ReplyAsync(h, (nextTx++) + "\0");
                    break;
                case XsMessageType.TransactionEnd when Encoding.ASCII.GetString(payload) == "T\0":
                    if (Interlocked.Increment(ref commits) < 3) await peer.ErrorAsync(h, XsError.EAGAIN);
                    else await peer.ReplyAsync(h, "OK\0");
                    break;
                case XsMessageType.Read:
                    await peer.ReplyAsync(h, "tx" + h.TransactionId);
                    break;
                default:
                    await peer.ReplyAsync(h, "OK\0");
                    break;
            }
        });
        await using var client = await XenStoreClient.ConnectAsync(daemon.SocketPath);
        var seen = new List<string>();
        var (committed, result) = await client.RunInTransactionAsync(async tx =>
        {
            var v = await tx.ReadAsync("/counter");
            seen.Add(v);
            await tx.WriteAsync("/counter", v + "!");
            return v;
        }).WaitAsync(Wait);
        Assert.That(committed, Is.True);
        Assert.That(seen, Is.EqualTo(new[] { "tx100", "tx101", "tx102" }));
        Assert.That(result, Is.EqualTo("tx102"));

        bool aborted = await client.RunInTransactionAsync(tx => tx.AbortAsync()).WaitAsync(Wait);
        Assert.That(aborted, Is.False, "a body that aborts commits nothing");
    }

    [Test]
    public void Connecting_to_a_missing_socket_says_where()
    {
        var e = Assert.ThrowsAsync<XenStoreConnectionLostException>(() => XenStoreClient.ConnectAsync("/nonexistent-dir/xs-socket"));
        Assert.That(e!.Message, Does.StartWith("cannot connect to xenstored at /nonexistent-dir/xs-socket: "));
    }

    [Test]
    public void Default_path_follows_libxenstore_environment_rules()
    {
        Assert.That(XenStoreClientOptions.DefaultSocketPath, Is.EqualTo("/var/run/xenstored/socket"));
        var old = Environment.GetEnvironmentVariable("XENSTORED_PATH");
        Assert.That(XenStoreClientOptions.DefaultPath(), Is.EqualTo(string.IsNullOrEmpty(old)
            ? (Environment.GetEnvironmentVariable("XENSTORED_RUNDIR") is { Length: > 0 } r ? r + "/socket" : "/var/run/xenstored/socket")
            : old));
    }
}
