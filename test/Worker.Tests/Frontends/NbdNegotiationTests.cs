using System.Text;
using BlkTapCtrl.Protocol.Nbd;
using BlkTapCtrl.Testing;
using BlkTapCtrl.Worker.Frontends;

namespace BlkTapCtrl.Worker.Tests.Frontends;

/// <summary>Option haggling against the real server on a unix socket.</summary>
public class NbdNegotiationTests
{
    [Test]
    public void Go_reports_size_flags_and_block_size()
    {
        using var h = new NbdFrontendHarness(imageBytes: 3 << 20);
        using var c = h.Connect();
        Assert.That(c.ServerFlags, Is.EqualTo(NbdHandshakeFlags.FixedNewstyle | NbdHandshakeFlags.NoZeroes));
        Assert.That(c.Size, Is.EqualTo(3UL << 20));
        Assert.That(c.Structured, Is.True);
        var expected = NbdTransmissionFlags.HasFlags | NbdTransmissionFlags.SendFlush | NbdTransmissionFlags.SendFua
            | NbdTransmissionFlags.SendTrim | NbdTransmissionFlags.SendWriteZeroes | NbdTransmissionFlags.SendCache
            | NbdTransmissionFlags.CanMultiConn | NbdTransmissionFlags.SendDf;
        Assert.That(c.Flags, Is.EqualTo(expected));
        Assert.That(c.BlockSize, Is.EqualTo((512u, 4096u, 32u << 20)));
    }

    [Test]
    public void Read_only_export_says_so_and_offers_no_trim_or_zeroes()
    {
        using var h = new NbdFrontendHarness(readOnly: true);
        using var c = h.Connect(structured: false);
        Assert.That(c.Flags.HasFlag(NbdTransmissionFlags.ReadOnly), Is.True);
        Assert.That(c.Flags & (NbdTransmissionFlags.SendTrim | NbdTransmissionFlags.SendWriteZeroes | NbdTransmissionFlags.SendDf), Is.EqualTo(NbdTransmissionFlags.None));
    }

    /// <summary>
    /// A client that sends options and never reads: 250 000 LISTs ask for 12 MB of replies, more than the
    /// socket holds (4 MiB asked, doubled by the kernel). The server stops reading once 64 KiB of replies
    /// wait in its own buffer (before, it read on and buffered every reply: megabytes per connection, without
    /// limit), and every option is still answered, in order, once the client reads.
    /// </summary>
    [Test]
    public void A_client_that_never_reads_its_option_replies_costs_a_bounded_buffer_and_is_answered_in_full()
    {
        using var h = new NbdFrontendHarness();
        using var c = new NbdTestClient(h.SocketPath) { TimeoutMs = 10_000 };
        c.ReadGreeting();
        c.SendClientFlags(NbdClientFlags.FixedNewstyle);
        const int Options = 250_000;
        var stream = new byte[Options * NbdOptionHeader.Size];
        for (int i = 0; i < Options; i++)
            new NbdOptionHeader(NbdOption.List, 0).WriteTo(stream.AsSpan(i * NbdOptionHeader.Size));
        int sent = 0;
        for (var idleSince = DateTime.UtcNow; sent < stream.Length && DateTime.UtcNow - idleSince < TimeSpan.FromMilliseconds(500);)
        {
            int n = c.SendWithoutWaiting(stream.AsSpan(sent));
            if (n > 0) { sent += n; idleSince = DateTime.UtcNow; }
            else Thread.Sleep(5);
        }
        int held = h.OnLoop(() => h.Nbd.Connections.Single().UnsentHandshakeBytes);
        Assert.That(held, Is.LessThanOrEqualTo(NbdConnection.MaxUnsentHandshakeBytes + 64), "replies the server holds for a client that does not read");
        Assert.That(sent, Is.LessThan(stream.Length), "the server stopped reading, so the client's sends stopped too");

        int options = (sent + NbdOptionHeader.Size - 1) / NbdOptionHeader.Size;
        var reader = Task.Run(() =>
        {
            for (int i = 0; i < options; i++)
            {
                Assert.That(c.ReadOptionReply().Header.Type, Is.EqualTo(NbdOptionReplyType.Server), $"reply {i}");
                Assert.That(c.ReadOptionReply().Header.Type, Is.EqualTo(NbdOptionReplyType.Ack), $"reply {i}");
            }
        });
        c.Send(stream.AsSpan(sent, options * NbdOptionHeader.Size - sent)); // the rest of a cut option
        Assert.That(reader.Wait(TimeSpan.FromSeconds(30)), Is.True, "every option answered once the client reads");
        Assert.That(c.OptionReplies(NbdOption.List, [])[^1].Header.Type, Is.EqualTo(NbdOptionReplyType.Ack), "and haggling goes on");
        h.AssertLoopHealthy();
    }

    [Test]
    public void List_info_unknown_options_and_bad_data_are_answered_and_haggling_goes_on()
    {
        using var h = new NbdFrontendHarness();
        using var c = new NbdTestClient(h.SocketPath);
        c.ReadGreeting();
        c.SendClientFlags(NbdClientFlags.FixedNewstyle);

        var list = c.OptionReplies(NbdOption.List, []);
        Assert.That(list.Select(r => r.Header.Type), Is.EqualTo(new[] { NbdOptionReplyType.Server, NbdOptionReplyType.Ack }));
        Assert.That(NbdOptionReplies.ReadServer(list[0].Payload), Is.EqualTo("disk"));

        Assert.That(c.OptionReplies(NbdOption.List, [1])[^1].Header.Type, Is.EqualTo(NbdOptionReplyType.ErrorInvalid));
        Assert.That(c.OptionReplies((NbdOption)77, [1, 2, 3])[^1].Header.Type, Is.EqualTo(NbdOptionReplyType.ErrorUnsupported));
        Assert.That(c.OptionReplies(NbdOption.StartTls, [])[^1].Header.Type, Is.EqualTo(NbdOptionReplyType.ErrorUnsupported));
        Assert.That(c.OptionReplies(NbdOption.ExtendedHeaders, [])[^1].Header.Type, Is.EqualTo(NbdOptionReplyType.ErrorUnsupported));
        var unknown = c.OptionReplies(NbdOption.Info, new NbdInfoRequest("nope", []).Encode());
        Assert.That(unknown[^1].Header.Type, Is.EqualTo(NbdOptionReplyType.ErrorUnknown));
        Assert.That(Encoding.UTF8.GetString(unknown[^1].Payload), Does.Contain("nope"));
        var truncated = c.OptionReplies(NbdOption.Go, [0, 0, 0, 9]);
        Assert.That(truncated[^1].Header.Type, Is.EqualTo(NbdOptionReplyType.ErrorInvalid));
        // meta contexts need structured replies first
        var meta = c.OptionReplies(NbdOption.SetMetaContext, new NbdMetaContextRequest("disk", ["base:allocation"]).Encode());
        Assert.That(meta[^1].Header.Type, Is.EqualTo(NbdOptionReplyType.ErrorInvalid));
        // an option too long to buffer is refused and skipped, the stream stays in step
        var big = c.OptionReplies(NbdOption.Info, new byte[100_000]);
        Assert.That(big[^1].Header.Type, Is.EqualTo(NbdOptionReplyType.ErrorTooBig));

        var info = c.OptionReplies(NbdOption.Info, new NbdInfoRequest("", [NbdInfoType.Name]).Encode());
        Assert.That(info[^1].Header.Type, Is.EqualTo(NbdOptionReplyType.Ack));
        Assert.That(info.Count(r => r.Header.Type == NbdOptionReplyType.Info), Is.EqualTo(3), "export, block size, name");
        var go = c.OptionReplies(NbdOption.Go, new NbdInfoRequest("disk", []).Encode());
        Assert.That(go[^1].Header.Type, Is.EqualTo(NbdOptionReplyType.Ack));
        Assert.That(c.Read(0, 512), Has.Length.EqualTo(512));
    }

    [Test]
    public void Meta_contexts_list_and_set_base_allocation_only()
    {
        using var h = new NbdFrontendHarness();
        using var c = new NbdTestClient(h.SocketPath);
        c.ReadGreeting();
        c.SendClientFlags(NbdClientFlags.FixedNewstyle);
        c.OptionReplies(NbdOption.StructuredReply, []);
        var all = c.OptionReplies(NbdOption.ListMetaContext, new NbdMetaContextRequest("disk", []).Encode());
        Assert.That(all.Select(r => r.Header.Type), Is.EqualTo(new[] { NbdOptionReplyType.MetaContext, NbdOptionReplyType.Ack }));
        Assert.That(NbdOptionReplies.ReadMetaContext(all[0].Payload).Name, Is.EqualTo("base:allocation"));
        var none = c.OptionReplies(NbdOption.SetMetaContext, new NbdMetaContextRequest("disk", ["qemu:dirty-bitmap:x"]).Encode());
        Assert.That(none.Select(r => r.Header.Type), Is.EqualTo(new[] { NbdOptionReplyType.Ack }));
        var set = c.OptionReplies(NbdOption.SetMetaContext, new NbdMetaContextRequest("disk", ["base:allocation"]).Encode());
        Assert.That(NbdOptionReplies.ReadMetaContext(set[0].Payload), Is.EqualTo((1u, "base:allocation")));
        Assert.That(c.OptionReplies(NbdOption.StructuredReply, [])[^1].Header.Type, Is.EqualTo(NbdOptionReplyType.ErrorInvalid),
            "structured replies twice");
    }

    [Test]
    public void Export_name_option_enters_transmission_without_zeroes_when_asked()
    {
        using var h = new NbdFrontendHarness(imageBytes: 1 << 20);
        using var c = new NbdTestClient(h.SocketPath);
        c.ReadGreeting();
        c.SendClientFlags(NbdClientFlags.FixedNewstyle | NbdClientFlags.NoZeroes);
        c.SendOption(NbdOption.ExportName, "disk"u8);
        var reply = c.ReadExactly(NbdHandshake.ExportNameReplySizeNoZeroes);
        Assert.That(System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(reply), Is.EqualTo(1UL << 20));
        Assert.That(c.Read(4096, 4096), Has.Length.EqualTo(4096));
    }

    [Test]
    public void Abort_is_acknowledged_then_the_server_closes()
    {
        using var h = new NbdFrontendHarness();
        using var c = new NbdTestClient(h.SocketPath);
        c.ReadGreeting();
        c.SendClientFlags(NbdClientFlags.FixedNewstyle);
        Assert.That(c.OptionReplies(NbdOption.Abort, [])[^1].Header.Type, Is.EqualTo(NbdOptionReplyType.Ack));
        Assert.That(c.IsClosedByServer(), Is.True);
    }

    [Test]
    public void Unknown_export_name_ends_the_session_and_bad_client_flags_too()
    {
        using var h = new NbdFrontendHarness();
        using (var c = new NbdTestClient(h.SocketPath))
        {
            c.ReadGreeting();
            c.SendClientFlags(NbdClientFlags.FixedNewstyle);
            c.SendOption(NbdOption.ExportName, "other"u8);
            Assert.That(c.IsClosedByServer(), Is.True);
        }
        using (var c = new NbdTestClient(h.SocketPath))
        {
            c.ReadGreeting();
            c.SendClientFlags((NbdClientFlags)0x10);
            Assert.That(c.IsClosedByServer(), Is.True);
        }
        using var ok = h.Connect();
        Assert.That(ok.Read(0, 512), Has.Length.EqualTo(512));
    }
}
