using BlkTapCtrl.Protocol.Nbd;
using BlkTapCtrl.Testing;
using BlkTapCtrl.Worker.Server;

namespace BlkTapCtrl.Worker.Tests.Frontends;

/// <summary>Requests through the NBD frontend into the real VBD engine and image file.</summary>
public class NbdTransmissionTests
{
    [TestCase(IoBackendKind.LinuxAio, true)]
    [TestCase(IoBackendKind.LinuxAio, false)]
    [TestCase(IoBackendKind.Synchronous, true)]
    [TestCase(IoBackendKind.Synchronous, false)]
    [TestCase(IoBackendKind.IoUring, true)]
    [TestCase(IoBackendKind.IoUring, false)]
    public void Writes_reach_the_file_and_reads_return_it(IoBackendKind backend, bool structured)
    {
        using var h = new NbdFrontendHarness(backend: backend);
        using var c = h.Connect(structured);
        var data = TestBytes.Pattern(64 * 1024, 1);
        Assert.That(c.Write(8192, data), Is.EqualTo(NbdError.None));
        Assert.That(TestBytes.FileRange(h.ImagePath, 8192, data.Length), Is.EqualTo(data));
        Assert.That(c.Read(8192, (uint)data.Length), Is.EqualTo(data));
        Assert.That(c.Read(0, 8192), Is.All.EqualTo(0));
        h.AssertLoopHealthy();
    }

    [Test]
    public void Fua_write_flush_trim_cache_and_zero_length_requests_succeed()
    {
        using var h = new NbdFrontendHarness();
        using var c = h.Connect();
        Assert.That(c.Write(0, TestBytes.Pattern(4096, 2), NbdCommandFlags.Fua), Is.EqualTo(NbdError.None));
        Assert.That(c.Command(NbdCommand.Flush), Is.EqualTo(NbdError.None));
        Assert.That(c.Command(NbdCommand.Trim, 0, 4096), Is.EqualTo(NbdError.None));
        Assert.That(c.Command(NbdCommand.Cache, 0, 1 << 20), Is.EqualTo(NbdError.None));
        Assert.That(c.Command(NbdCommand.Write, 4096, 0), Is.EqualTo(NbdError.None));
        Assert.That(c.Read(4096, 0), Is.Empty);
        Assert.That(TestBytes.FileRange(h.ImagePath, 0, 4096), Is.EqualTo(TestBytes.Pattern(4096, 2)));
    }

    [Test]
    public void Write_zeroes_clears_a_range_larger_than_one_vbd_request()
    {
        using var h = new NbdFrontendHarness(imageBytes: 32 << 20, prepareImage: p => File.WriteAllBytes(p, TestBytes.Pattern(32 << 20, 3)));
        using var c = h.Connect();
        Assert.That(c.Command(NbdCommand.WriteZeroes, 512, (30 << 20) - 1024, NbdCommandFlags.Fua | NbdCommandFlags.NoHole), Is.EqualTo(NbdError.None));
        var file = File.ReadAllBytes(h.ImagePath);
        Assert.That(file.AsSpan(512, (30 << 20) - 1024).IndexOfAnyExcept((byte)0), Is.EqualTo(-1));
        Assert.That(file.AsSpan(0, 512).ToArray(), Is.EqualTo(TestBytes.Pattern(32 << 20, 3).AsSpan(0, 512).ToArray()));
        Assert.That(file[(30 << 20) - 512], Is.EqualTo(TestBytes.Pattern(32 << 20, 3)[(30 << 20) - 512]));
    }

    [TestCase(true)]
    [TestCase(false)]
    public void Read_only_export_refuses_writes_with_EPERM_and_the_payload_is_skipped(bool structured)
    {
        using var h = new NbdFrontendHarness(readOnly: true);
        using var c = h.Connect(structured);
        c.SendRequest(NbdCommand.Write, 0, 8192, 0, TestBytes.Pattern(8192, 4));
        var reply = c.ReadReply();
        Assert.That(reply.Error, Is.EqualTo(NbdError.NotPermitted));
        if (structured) Assert.That(reply.Message, Does.Contain("read-only"));
        Assert.That(c.Command(NbdCommand.Trim, 0, 4096), Is.EqualTo(NbdError.NotPermitted));
        Assert.That(c.Command(NbdCommand.WriteZeroes, 0, 4096), Is.EqualTo(NbdError.NotPermitted));
        Assert.That(c.Read(0, 8192), Is.All.EqualTo(0), "the stream is still in step and nothing was written");
        Assert.That(TestBytes.FileRange(h.ImagePath, 0, 8192), Is.All.EqualTo(0));
    }

    [Test]
    public void Bad_requests_get_the_errno_proto_md_asks_for_and_the_session_continues()
    {
        using var h = new NbdFrontendHarness(imageBytes: 1 << 20);
        using var c = h.Connect();
        Assert.That(c.Command((NbdCommand)42, 0, 0), Is.EqualTo(NbdError.Invalid), "unknown command");
        Assert.That(c.Command(NbdCommand.Read, 0, 512, (NbdCommandFlags)0x100), Is.EqualTo(NbdError.Invalid), "unknown flag");
        Assert.That(c.Command(NbdCommand.Read, 0, 512, NbdCommandFlags.RequestOne), Is.EqualTo(NbdError.Invalid), "flag of another command");
        Assert.That(c.Command(NbdCommand.Read, (1 << 20) - 512, 1024), Is.EqualTo(NbdError.Invalid), "read past the end");
        c.SendRequest(NbdCommand.Write, (1 << 20) - 512, 1024, 0, new byte[1024]);
        Assert.That(c.ReadReply().Error, Is.EqualTo(NbdError.NoSpace), "write past the end");
        Assert.That(c.Command(NbdCommand.Read, 100, 512), Is.EqualTo(NbdError.Invalid), "unaligned");
        Assert.That(c.Command(NbdCommand.Read, 0, (32 << 20) + 512), Is.EqualTo(NbdError.Invalid), "beyond the maximum payload");
        c.SendRequest(NbdCommand.Write, 0, 33 << 20, 0, new byte[33 << 20]);
        Assert.That(c.ReadReply().Error, Is.EqualTo(NbdError.NoSpace), "oversized write is refused and its payload skipped");
        Assert.That(c.Write(0, TestBytes.Pattern(512, 5)), Is.EqualTo(NbdError.None));
        Assert.That(c.Read(0, 512), Is.EqualTo(TestBytes.Pattern(512, 5)));
    }

    /// <summary>
    /// Found by the transmission fuzz (seed 7slPwAh0iOH1): a TRIM reaching past the end was answered
    /// ENOSPC like a write; proto.md asks EINVAL for a read or trim beyond the end, ENOSPC only for writes.
    /// </summary>
    [Test]
    public void A_trim_beyond_the_end_is_EINVAL_while_writes_beyond_it_are_ENOSPC()
    {
        using var h = new NbdFrontendHarness(imageBytes: 1 << 20);
        using var c = h.Connect();
        Assert.That(c.Command(NbdCommand.Trim, (1 << 20) - 512, 9728), Is.EqualTo(NbdError.Invalid), "trim past the end");
        Assert.That(c.Command(NbdCommand.Trim, ulong.MaxValue - 511, 1024), Is.EqualTo(NbdError.Invalid), "trim overflowing u64");
        Assert.That(c.Command(NbdCommand.WriteZeroes, (1 << 20) - 512, 1024), Is.EqualTo(NbdError.NoSpace), "write zeroes past the end");
        Assert.That(c.Command(NbdCommand.Trim, (1 << 20) - 512, 512), Is.EqualTo(NbdError.None), "the last sector");
    }

    [Test]
    public void Block_status_without_the_context_is_EINVAL()
    {
        using var h = new NbdFrontendHarness();
        using var c = h.Connect(structured: true, baseAllocation: false);
        Assert.That(c.Command(NbdCommand.BlockStatus, 0, 4096), Is.EqualTo(NbdError.Invalid));
    }

    [Test]
    public void Block_status_reports_holes_of_a_sparse_raw_file()
    {
        using var h = new NbdFrontendHarness(imageBytes: 8 << 20, prepareImage: p =>
        {
            using var f = new FileStream(p, FileMode.Open);
            f.Position = 1 << 20;
            f.Write(TestBytes.Pattern(1 << 20, 6));
        });
        using var c = h.Connect();
        c.SendRequest(NbdCommand.BlockStatus, 0, 8 << 20);
        var r = c.ReadReply();
        Assert.That(r.Error, Is.EqualTo(NbdError.None));
        var hz = (uint)(NbdAllocationFlags.Hole | NbdAllocationFlags.Zero);
        Assert.That(r.Extents, Is.EqualTo(new[]
        {
            new NbdBlockDescriptor(1 << 20, hz), new NbdBlockDescriptor(1 << 20, 0), new NbdBlockDescriptor(6 << 20, hz),
        }));
        c.SendRequest(NbdCommand.BlockStatus, 512, (8 << 20) - 512, NbdCommandFlags.RequestOne);
        r = c.ReadReply();
        Assert.That(r.Extents, Is.EqualTo(new[] { new NbdBlockDescriptor((1 << 20) - 512, hz) }));
        c.SendRequest(NbdCommand.BlockStatus, 0, (8 << 20) + 512);
        Assert.That(c.ReadReply().Error, Is.EqualTo(NbdError.Invalid), "beyond the export");
    }

    [Test]
    public void A_protocol_breaker_is_disconnected_while_other_clients_continue()
    {
        using var h = new NbdFrontendHarness();
        using var good = h.Connect();
        using var bad = h.Connect();
        Assert.That(good.Write(0, TestBytes.Pattern(4096, 7)), Is.EqualTo(NbdError.None));
        bad.Send(new byte[28]); // request magic 0
        Assert.That(bad.IsClosedByServer(), Is.True);
        Assert.That(good.Read(0, 4096), Is.EqualTo(TestBytes.Pattern(4096, 7)));
        lock (h.LogLines) Assert.That(string.Join("\n", h.LogLines), Does.Contain("protocol violation: request magic is 0x00000000"));
    }

    [Test]
    public void Disconnect_answers_outstanding_requests_then_closes()
    {
        using var h = new NbdFrontendHarness();
        using var c = h.Connect();
        ulong a = c.SendRequest(NbdCommand.Write, 0, 4096, 0, TestBytes.Pattern(4096, 8));
        ulong b = c.SendRequest(NbdCommand.Read, 0, 4096);
        c.Disconnect();
        var cookies = new[] { c.ReadReply(), c.ReadReply() }.Select(r => r.Cookie);
        Assert.That(cookies, Is.EquivalentTo(new[] { a, b }));
        Assert.That(c.IsClosedByServer(), Is.True);
        Assert.That(h.OnLoop(() => h.Nbd.Connections.Count), Is.Zero);
    }

    [Test]
    public void Pipelined_requests_on_several_connections_are_all_answered_with_the_right_data()
    {
        using var h = new NbdFrontendHarness(imageBytes: 16 << 20);
        var clients = Enumerable.Range(0, 4).Select(_ => h.Connect()).ToArray();
        try
        {
            Parallel.For(0, clients.Length, i =>
            {
                var c = clients[i];
                // cookies 1..200 are the writes of blocks 0..199, cookies 201..400 the reads of the same blocks
                for (int k = 0; k < 200; k++)
                    c.SendRequest(NbdCommand.Write, (ulong)(i * (4 << 20) + k * 8192), 8192, 0, TestBytes.Pattern(8192, i * 1000 + k));
                for (int k = 0; k < 200; k++)
                    Assert.That(c.ReadReply().Error, Is.EqualTo(NbdError.None));
                for (int k = 0; k < 200; k++)
                    c.SendRequest(NbdCommand.Read, (ulong)(i * (4 << 20) + k * 8192), 8192);
                for (int k = 0; k < 200; k++)
                {
                    var r = c.ReadReply();
                    Assert.That(r.Data, Is.EqualTo(TestBytes.Pattern(8192, i * 1000 + (int)((r.Cookie - 201) % 200))));
                }
            });
        }
        finally
        {
            foreach (var c in clients) c.Dispose();
        }
        h.AssertLoopHealthy();
    }

    [Test]
    public void Steady_state_requests_allocate_nothing_on_the_loop_thread()
    {
        using var h = new NbdFrontendHarness(imageBytes: 16 << 20);
        using var c = h.Connect();
        var data = TestBytes.Pattern(4096, 9);
        void Burst(int n)
        {
            for (int k = 0; k < n; k++)
            {
                c.SendRequest(NbdCommand.Write, (ulong)(k % 1024) * 4096, 4096, 0, data);
                c.SendRequest(NbdCommand.Read, (ulong)(k % 1024) * 4096, 4096);
                if (k % 16 == 15)
                    for (int j = 0; j < 32; j++) c.ReadReply();
            }
        }
        Burst(512); // warm the pools
        Thread.Sleep(100);
        long before = h.LoopAllocatedBytes;
        Burst(2048);
        Thread.Sleep(100);
        long allocated = h.LoopAllocatedBytes - before;
        Assert.That(allocated, Is.LessThan(4096), $"{allocated} bytes allocated on the loop thread for 4096 requests");
    }

    [Test]
    public void A_1_MiB_read_reply_leaves_whole_while_the_client_is_not_reading()
    {
        // With the default ~200 KiB socket buffer the server could queue only a fifth of it and would wait
        // for the client to drain; the widened buffer takes the whole reply in one go.
        using var h = new NbdFrontendHarness(imageBytes: 4 << 20, prepareImage: p => File.WriteAllBytes(p, TestBytes.Pattern(4 << 20, 8)));
        using var c = h.Connect(structured: true);
        c.SendRequest(NbdCommand.Read, 1 << 20, 1 << 20);
        int expected = (1 << 20) + NbdStructuredReply.OffsetDataHeaderSize;
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (c.Available < expected && DateTime.UtcNow < deadline) Thread.Sleep(10);
        Assert.That(c.Available, Is.EqualTo(expected), "bytes queued on the client's socket before it read any");
        Assert.That(c.ReadReply().Data, Is.EqualTo(TestBytes.Pattern(4 << 20, 8).AsSpan(1 << 20, 1 << 20).ToArray()));
    }
}
