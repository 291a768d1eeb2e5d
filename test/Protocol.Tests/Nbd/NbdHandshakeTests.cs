using BlkTapCtrl.Protocol.Nbd;

namespace BlkTapCtrl.Protocol.Tests.Nbd;

public class NbdHandshakeTests
{
    [Test]
    public void Greeting_is_NBDMAGIC_IHAVEOPT_and_flags_big_endian()
    {
        var buf = new byte[NbdHandshake.GreetingSize];
        NbdHandshake.WriteGreeting(buf, NbdHandshakeFlags.FixedNewstyle | NbdHandshakeFlags.NoZeroes);
        Assert.That(Convert.ToHexString(buf), Is.EqualTo("4E42444D41474943" + "49484156454F5054" + "0003"));
        Assert.That(NbdHandshake.ReadGreeting(buf), Is.EqualTo(NbdHandshakeFlags.FixedNewstyle | NbdHandshakeFlags.NoZeroes));
    }

    [Test]
    public void Oldstyle_greeting_is_refused_by_the_client_reader()
    {
        var buf = Convert.FromHexString("4E42444D41474943" + "00420281861253AA" + "0000");
        var ex = Assert.Throws<NbdProtocolException>(() => NbdHandshake.ReadGreeting(buf));
        Assert.That(ex!.Message, Does.Contain("0x00420281861253aa"));
    }

    [Test]
    public void Client_flags_the_server_did_not_advertise_end_the_session()
    {
        var buf = new byte[4];
        NbdHandshake.WriteClientFlags(buf, NbdClientFlags.FixedNewstyle | NbdClientFlags.NoZeroes);
        Assert.That(NbdHandshake.ReadClientFlags(buf, NbdHandshakeFlags.FixedNewstyle | NbdHandshakeFlags.NoZeroes),
            Is.EqualTo(NbdClientFlags.FixedNewstyle | NbdClientFlags.NoZeroes));
        var ex = Assert.Throws<NbdProtocolException>(() => NbdHandshake.ReadClientFlags(buf, NbdHandshakeFlags.FixedNewstyle));
        Assert.That(ex!.Message, Does.Contain("0x00000002"));
        Assert.Throws<NbdProtocolException>(() => NbdHandshake.ReadClientFlags([0, 0, 0, 4], NbdHandshakeFlags.FixedNewstyle));
        Assert.That(NbdHandshake.ReadClientFlags([0, 0, 0, 0], NbdHandshakeFlags.FixedNewstyle), Is.EqualTo(NbdClientFlags.None));
    }

    [Test]
    public void Export_name_reply_has_124_zeroes_unless_no_zeroes()
    {
        var buf = new byte[200];
        Array.Fill(buf, (byte)0xEE);
        int n = NbdHandshake.WriteExportNameReply(buf, 0x1_0000_0200, NbdTransmissionFlags.HasFlags | NbdTransmissionFlags.SendFlush, false);
        Assert.That(n, Is.EqualTo(134));
        Assert.That(Convert.ToHexString(buf, 0, 10), Is.EqualTo("0000000100000200" + "0005"));
        Assert.That(buf.AsSpan(10, 124).ToArray(), Is.All.EqualTo(0));
        Assert.That(buf[134], Is.EqualTo(0xEE));
        Assert.That(NbdHandshake.WriteExportNameReply(buf, 1, NbdTransmissionFlags.HasFlags, true), Is.EqualTo(10));
    }

    [Test]
    public void Option_header_round_trips_and_rejects_a_wrong_magic()
    {
        var buf = new byte[NbdOptionHeader.Size];
        new NbdOptionHeader(NbdOption.Go, 0x1234).WriteTo(buf);
        Assert.That(Convert.ToHexString(buf), Is.EqualTo("49484156454F5054" + "00000007" + "00001234"));
        Assert.That(NbdOptionHeader.TryRead(buf, out var h), Is.True);
        Assert.That(h, Is.EqualTo(new NbdOptionHeader(NbdOption.Go, 0x1234)));
        Assert.That(NbdOptionHeader.TryRead(buf.AsSpan(0, 15), out _), Is.False);
        buf[0] = 0;
        var ex = Assert.Throws<NbdProtocolException>(() => NbdOptionHeader.TryRead(buf, out _));
        Assert.That(ex!.Message, Does.Contain("option magic"));
    }

    [Test]
    public void Option_reply_header_is_magic_option_type_length()
    {
        var buf = new byte[64];
        int n = NbdOptionReplies.WriteError(buf, NbdOption.StartTls, NbdOptionReplyType.ErrorPolicy, "no");
        Assert.That(n, Is.EqualTo(22));
        Assert.That(Convert.ToHexString(buf, 0, 22), Is.EqualTo("0003E889045565A9" + "00000005" + "80000002" + "00000002" + "6E6F"));
        Assert.That(NbdOptionReplyHeader.TryRead(buf, out var h), Is.True);
        Assert.That(h.IsError, Is.True);
        Assert.Throws<ArgumentException>(() => NbdOptionReplies.WriteError(buf, NbdOption.Go, NbdOptionReplyType.Ack, "x"));
    }

    [Test]
    public void Info_replies_round_trip()
    {
        var buf = new byte[64];
        int n = NbdOptionReplies.WriteInfoExport(buf, NbdOption.Go, 1 << 30, NbdTransmissionFlags.HasFlags | NbdTransmissionFlags.CanMultiConn);
        Assert.That(n, Is.EqualTo(32));
        NbdOptionReplyHeader.TryRead(buf, out var h);
        Assert.That(h, Is.EqualTo(new NbdOptionReplyHeader(NbdOption.Go, NbdOptionReplyType.Info, 12)));
        Assert.That(NbdOptionReplies.ReadInfoExport(buf.AsSpan(20, 12)),
            Is.EqualTo((1UL << 30, NbdTransmissionFlags.HasFlags | NbdTransmissionFlags.CanMultiConn)));

        n = NbdOptionReplies.WriteInfoBlockSize(buf, NbdOption.Info, 512, 4096, 32 << 20);
        Assert.That(NbdOptionReplies.ReadInfoBlockSize(buf.AsSpan(20, n - 20)), Is.EqualTo((512u, 4096u, 32u << 20)));

        n = NbdOptionReplies.WriteMetaContext(buf, NbdOption.SetMetaContext, 7, "base:allocation");
        Assert.That(NbdOptionReplies.ReadMetaContext(buf.AsSpan(20, n - 20)), Is.EqualTo((7u, "base:allocation")));

        n = NbdOptionReplies.WriteServer(buf, NbdOption.List, "disk");
        Assert.That(NbdOptionReplies.ReadServer(buf.AsSpan(20, n - 20)), Is.EqualTo("disk"));
    }

    [Test]
    public void Go_request_round_trips_and_bad_data_is_an_invalid_option_not_a_crash()
    {
        var req = new NbdInfoRequest("vm disk", [NbdInfoType.BlockSize, NbdInfoType.Name]);
        var parsed = NbdInfoRequest.Parse(req.Encode());
        Assert.That(parsed.ExportName, Is.EqualTo("vm disk"));
        Assert.That(parsed.Requests, Is.EqualTo(new[] { NbdInfoType.BlockSize, NbdInfoType.Name }));

        var bytes = req.Encode();
        Assert.Throws<NbdInvalidOptionException>(() => NbdInfoRequest.Parse(bytes.AsSpan(0, bytes.Length - 1)));
        Assert.Throws<NbdInvalidOptionException>(() => NbdInfoRequest.Parse(bytes.Concat(new byte[] { 0 }).ToArray()));
        var ex = Assert.Throws<NbdInvalidOptionException>(() => NbdInfoRequest.Parse([0, 0, 0, 9, 1, 2]));
        Assert.That(ex!.Message, Does.Contain("export name length 9"));
        Assert.Throws<NbdInvalidOptionException>(() => NbdInfoRequest.Parse([0, 0, 0, 1, 0, 0, 0]));
        Assert.Throws<NbdInvalidOptionException>(() => NbdInfoRequest.Parse([0, 0, 0, 1, 0xFF, 0, 0]));
    }

    [Test]
    public void Meta_context_request_round_trips_and_a_lying_count_allocates_nothing()
    {
        var req = new NbdMetaContextRequest("", ["base:allocation", "qemu:dirty-bitmap:x"]);
        var parsed = NbdMetaContextRequest.Parse(req.Encode());
        Assert.That(parsed.ExportName, Is.Empty);
        Assert.That(parsed.Queries, Is.EqualTo(new[] { "base:allocation", "qemu:dirty-bitmap:x" }));

        var ex = Assert.Throws<NbdInvalidOptionException>(() => NbdMetaContextRequest.Parse([0, 0, 0, 0, 0x7F, 0xFF, 0xFF, 0xFF]));
        Assert.That(ex!.Message, Does.Contain("2147483647 queries"));
        var bytes = req.Encode();
        Assert.Throws<NbdInvalidOptionException>(() => NbdMetaContextRequest.Parse(bytes.Concat(new byte[] { 1 }).ToArray()));
    }
}
