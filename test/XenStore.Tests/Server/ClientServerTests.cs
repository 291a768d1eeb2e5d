using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using BlkTapCtrl.Protocol.XenStore;
using BlkTapCtrl.XenStore.Client;
using BlkTapCtrl.XenStore.Server;

namespace BlkTapCtrl.XenStore.Tests.Server;

/// <summary>Our client against our server over a real unix socket, in one process.</summary>
public class ClientServerTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    [Test]
    public async Task Every_operation_works_end_to_end()
    {
        await using var server = new RunningServer();
        await using var c = await server.ConnectAsync();
        await c.WriteAsync("/local/domain/0/backend/tap/1/51712/params", "vhd:/srv/a.vhd");
        Assert.That(await c.ReadAsync("backend/tap/1/51712/params"), Is.EqualTo("vhd:/srv/a.vhd"));
        Assert.That(await c.DirectoryAsync("/local/domain/0/backend/tap/1"), Is.EqualTo(new[] { "51712" }));
        Assert.That(await c.ExistsAsync("/local/domain/0/backend"), Is.True);
        Assert.That(await c.ExistsAsync("/nope"), Is.False);
        await c.MkdirAsync("/m");
        await c.SetPermissionsAsync("/m", [new XsPermission(XsAccess.None, 0), new XsPermission(XsAccess.Read, 3)]);
        Assert.That(await c.GetPermissionsAsync("/m"), Is.EqualTo(new[] { new XsPermission(XsAccess.None, 0), new XsPermission(XsAccess.Read, 3) }));
        await c.RemoveAsync("/m");
        Assert.That(await c.TryReadAsync("/m"), Is.Null);
        Assert.That(await c.GetDomainPathAsync(4), Is.EqualTo("/local/domain/4"));
        Assert.That(await c.IsDomainIntroducedAsync(0), Is.True);
        Assert.That(await c.ControlAsync(["help"]), Does.Contain("print"));
    }

    [Test]
    public async Task Directory_falls_back_to_directory_part_for_long_lists()
    {
        await using var server = new RunningServer();
        await using var c = await server.ConnectAsync();
        var names = Enumerable.Range(0, 700).Select(i => $"vbd-{i:D5}").ToList();
        await Task.WhenAll(names.Select(n => c.WriteAsync("/big/" + n, "")));
        Assert.That(await c.DirectoryAsync("/big"), Is.EqualTo(names));
    }

    [Test]
    public async Task Watch_events_arrive_for_changes_by_another_client()
    {
        await using var server = new RunningServer();
        await using var a = await server.ConnectAsync();
        await using var b = await server.ConnectAsync();
        await using var w = await a.WatchAsync("/local/domain/0/backend/tap", "backend");
        Assert.That((await w.Events.ReadAsync().AsTask().WaitAsync(Wait)).Path, Is.EqualTo("/local/domain/0/backend/tap"));
        await b.WriteAsync("/local/domain/0/backend/tap/3/768", "");
        Assert.That(await w.Events.ReadAsync().AsTask().WaitAsync(Wait), Is.EqualTo(new XenStoreWatchEvent("/local/domain/0/backend/tap/3/768", "backend")));
        await b.RemoveAsync("/local/domain/0/backend");
        Assert.That((await w.Events.ReadAsync().AsTask().WaitAsync(Wait)).Path, Is.EqualTo("/local/domain/0/backend/tap"), "ancestor removal names the watched path");
    }

    [Test]
    public async Task Thirty_two_clients_incrementing_one_counter_in_transactions_end_at_6400()
    {
        await using var server = new RunningServer();
        await using (var setup = await server.ConnectAsync())
            await setup.WriteAsync("/counter", "0");
        var clients = await Task.WhenAll(Enumerable.Range(0, 32).Select(_ => server.ConnectAsync(TimeSpan.FromSeconds(60))));
        try
        {
            var sw = Stopwatch.StartNew();
            await Task.WhenAll(clients.Select(c => Task.Run(async () =>
            {
                for (int i = 0; i < 200; i++)
                {
                    await c.RunInTransactionAsync(async tx =>
                    {
                        int v = int.Parse(await tx.ReadAsync("/counter"), System.Globalization.CultureInfo.InvariantCulture);
                        await tx.WriteAsync("/counter", (v + 1).ToString(System.Globalization.CultureInfo.InvariantCulture));
                    });
                }
            }))).WaitAsync(TimeSpan.FromMinutes(3));
            TestContext.Out.WriteLine($"6400 transactional increments by 32 clients in {sw.ElapsedMilliseconds} ms");
            Assert.That(await clients[0].ReadAsync("/counter"), Is.EqualTo("6400"));
        }
        finally
        {
            foreach (var c in clients) await c.DisposeAsync();
        }
    }

    [Test]
    public async Task A_client_that_disconnects_mid_transaction_leaves_nothing_behind()
    {
        await using var server = new RunningServer();
        await using var other = await server.ConnectAsync();
        var quitter = await server.ConnectAsync();
        var tx = await quitter.StartTransactionAsync();
        await tx.WriteAsync("/half/done", "x");
        await quitter.DisposeAsync();
        await other.WriteAsync("/after", "y");
        Assert.That(await other.TryReadAsync("/half/done"), Is.Null);
        Assert.That(await other.RunInTransactionAsync(t => t.WriteAsync("/after", "z")), Is.True);
    }

    [Test]
    public async Task A_garbage_sender_is_disconnected_with_a_logged_reason_and_others_carry_on()
    {
        await using var server = new RunningServer();
        await using var good = await server.ConnectAsync();
        using var bad = server.RawConnect();
        var frame = new byte[16];
        new XsHeader(XsMessageType.Write, 1, 0, 100_000).Write(frame);
        bad.Send(frame);
        var buf = new byte[64];
        bad.ReceiveTimeout = 10_000;
        Assert.That(bad.Receive(buf), Is.Zero, "the server closed the garbage sender's connection");
        Assert.That(server.Log, Has.Some.Contains("announces a payload of 100000 bytes"));
        await good.WriteAsync("/still", "fine");
        Assert.That(await good.ReadAsync("/still"), Is.EqualTo("fine"));
    }

    [Test]
    public async Task An_unknown_message_type_gets_an_error_reply_and_the_connection_stays()
    {
        await using var server = new RunningServer();
        using var raw = server.RawConnect();
        var frame = new byte[20];
        new XsHeader((XsMessageType)77, 42, 0, 4).Write(frame);
        "abc\0"u8.CopyTo(frame.AsSpan(16));
        raw.Send(frame);
        var (header, payload) = ReadFrame(raw);
        Assert.That(header, Is.EqualTo(new XsHeader(XsMessageType.Error, 42, 0, 7)));
        Assert.That(payload, Is.EqualTo("EINVAL\0"u8.ToArray()));
        // Split writes as libxenstore sends them: header, then path, then value.
        var write = new byte[16];
        new XsHeader(XsMessageType.Write, 0, 0, 6).Write(write);
        raw.Send(write);
        Thread.Sleep(20);
        raw.Send("/w\0"u8.ToArray());
        Thread.Sleep(20);
        raw.Send("abc"u8.ToArray());
        Assert.That(ReadFrame(raw), Is.EqualTo((new XsHeader(XsMessageType.Write, 0, 0, 3), "OK\0"u8.ToArray())).Using<(XsHeader, byte[])>((x, y) => x.Item1 == y.Item1 && x.Item2.SequenceEqual(y.Item2)));
    }

    [Test]
    public async Task A_watcher_that_stops_reading_is_dropped_without_slowing_writers()
    {
        await using var server = new RunningServer(new StoreQuotas { OutputBytesPerConnection = 256 * 1024 });
        using var stalled = server.RawConnect();
        stalled.ReceiveBufferSize = 4096;
        var watch = new byte[XsLimits.FrameMax];
        var b = new XsFrameBuilder(watch, XsMessageType.Watch, 1, 0);
        b.StringNul("/hot");
        b.StringNul(new string('t', 2000)); // a long token makes every event ~2 KiB
        stalled.Send(watch.AsSpan(0, b.Finish()));
        await using var writer = await server.ConnectAsync();
        while (server.Server.Engine.WatchCount == 0) await Task.Delay(5);
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < 1000; i++) await writer.WriteAsync("/hot/" + (i % 10), "v");
        TestContext.Out.WriteLine($"1000 writes while a watcher stalls: {sw.ElapsedMilliseconds} ms");
        Assert.That(server.Log, Has.Some.Contains("watch events are not being read"));
        Assert.That(server.Server.Engine.WatchCount, Is.Zero, "the dropped watcher's watch is gone");
    }

    [Test]
    public async Task A_client_that_never_reads_replies_only_stalls_itself()
    {
        await using var server = new RunningServer(new StoreQuotas { OutstandingRequestsPerConnection = 64, OutputBytesPerConnection = 1 << 20 });
        using var flooder = server.RawConnect();
        flooder.ReceiveBufferSize = 4096;
        flooder.SendBufferSize = 4096;
        var frame = new byte[XsLimits.FrameMax];
        var b = new XsFrameBuilder(frame, XsMessageType.Read, 0, 0);
        b.StringNul("/local/domain/0/name");
        int size = b.Finish();
        var batch = new byte[size * 1000];
        for (int i = 0; i < 1000; i++) frame.AsSpan(0, size).CopyTo(batch.AsSpan(i * size));
        flooder.Blocking = false;
        int sent = 0;
        while (sent < batch.Length)
        {
            try { sent += flooder.Send(batch, sent, batch.Length - sent, SocketFlags.None); }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.WouldBlock) { break; }
        }
        TestContext.Out.WriteLine($"flooder queued {sent / size} requests before its socket filled");
        Assert.That(sent / size, Is.GreaterThan(2 * 64), "the flooder got well past its outstanding quota before the server stopped reading it");
        await using var good = await server.ConnectAsync();
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < 100; i++) await good.WriteAsync("/ok", i.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.That(sw.Elapsed, Is.LessThan(TimeSpan.FromSeconds(10)));
        Assert.That(await good.ReadAsync("/ok"), Is.EqualTo("99"));
    }

    [Test]
    public async Task A_client_reconnects_to_a_restarted_server_and_its_watches_fire_again()
    {
        var first = new RunningServer();
        var path = first.SocketPath;
        await using var c = await XenStoreClient.ConnectAsync(new XenStoreClientOptions { Path = path, ReconnectAutomatically = true });
        await using var w = await c.WatchAsync("/x", "tx");
        await w.Events.ReadAsync().AsTask().WaitAsync(Wait);
        var pending = c.ReadAsync("/never-answered-before-stop");
        await first.Server.StopAsync();
        var lost = new TaskCompletionSource();
        c.Reconnected += () => lost.TrySetResult();
        await using var second = new RunningServer(socketPath: path);
        await lost.Task.WaitAsync(Wait);
        Assert.That((await w.Events.ReadAsync().AsTask().WaitAsync(Wait)).Path, Is.EqualTo("/x"), "re-registered watch fires its initial event");
        await c.WriteAsync("/x/y", "1");
        Assert.That((await w.Events.ReadAsync().AsTask().WaitAsync(Wait)).Path, Is.EqualTo("/x/y"));
        try { await pending; } catch (XenStoreException) { } catch (XenStoreConnectionLostException) { }
        await first.DisposeAsync();
    }

    private static (XsHeader, byte[]) ReadFrame(Socket s)
    {
        s.ReceiveTimeout = 10_000;
        var header = new byte[16];
        ReceiveExactly(s, header);
        var h = XsHeader.Read(header);
        var payload = new byte[h.Length];
        ReceiveExactly(s, payload);
        return (h, payload);
    }

    private static void ReceiveExactly(Socket s, byte[] buffer)
    {
        int got = 0;
        while (got < buffer.Length)
        {
            int n = s.Receive(buffer, got, buffer.Length - got, SocketFlags.None);
            if (n == 0) throw new EndOfStreamException("server closed the connection");
            got += n;
        }
    }
}
