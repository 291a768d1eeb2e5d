using BlkTapCtrl.Protocol.Nbd;

namespace BlkTapCtrl.Protocol.Tests.Nbd;

public class NbdTransmissionTests
{
    [Test]
    public void Request_layout_is_magic_flags_type_cookie_offset_length()
    {
        var r = new NbdRequest(NbdCommandFlags.Fua, NbdCommand.Write, 0x0102030405060708, 0x1000, 0x200);
        var buf = new byte[NbdRequest.Size];
        r.WriteTo(buf);
        Assert.That(Convert.ToHexString(buf),
            Is.EqualTo("25609513" + "0001" + "0001" + "0102030405060708" + "0000000000001000" + "00000200"));
        Assert.That(NbdRequest.TryRead(buf, out var back), Is.True);
        Assert.That(back, Is.EqualTo(r));
        Assert.That(back.HasPayload, Is.True);
        Assert.That(NbdRequest.TryRead(buf.AsSpan(0, 27), out _), Is.False);
    }

    [Test]
    public void Request_with_a_wrong_magic_names_the_value()
    {
        var buf = new byte[NbdRequest.Size];
        buf[0] = 0xDE; buf[1] = 0xAD; buf[2] = 0xBE; buf[3] = 0xEF;
        var ex = Assert.Throws<NbdProtocolException>(() => NbdRequest.TryRead(buf, out _));
        Assert.That(ex!.Message, Does.Contain("0xdeadbeef"));
    }

    [Test]
    public void Simple_reply_layout()
    {
        var buf = new byte[16];
        new NbdSimpleReply(NbdError.NotPermitted, 42).WriteTo(buf);
        Assert.That(Convert.ToHexString(buf), Is.EqualTo("67446698" + "00000001" + "000000000000002A"));
        Assert.That(NbdSimpleReply.Read(buf), Is.EqualTo(new NbdSimpleReply(NbdError.NotPermitted, 42)));
        Assert.That(NbdChunkHeader.IsStructured(buf), Is.False);
    }

    [Test]
    public void Offset_data_chunk_header_counts_the_offset_in_its_length()
    {
        var buf = new byte[64];
        int n = NbdStructuredReply.WriteOffsetDataHeader(buf, NbdReplyFlags.Done, 9, 0x200, 4096);
        Assert.That(n, Is.EqualTo(28));
        Assert.That(Convert.ToHexString(buf, 0, 28),
            Is.EqualTo("668E33EF" + "0001" + "0001" + "0000000000000009" + "00001008" + "0000000000000200"));
        var h = NbdChunkHeader.Read(buf);
        Assert.That((h.IsDone, h.Type, h.Cookie, h.Length), Is.EqualTo((true, NbdReplyType.OffsetData, 9UL, 4104u)));
        Assert.That(NbdStructuredReply.ReadOffset(buf.AsSpan(20)), Is.EqualTo(0x200UL));
        Assert.Throws<ArgumentOutOfRangeException>(() => NbdStructuredReply.WriteOffsetDataHeader(buf, 0, 1, 0, 0));
    }

    [Test]
    public void Hole_none_and_error_chunks_round_trip()
    {
        var buf = new byte[128];
        int n = NbdStructuredReply.WriteOffsetHole(buf, NbdReplyFlags.None, 3, 4096, 512);
        Assert.That(n, Is.EqualTo(32));
        Assert.That(NbdStructuredReply.ReadOffsetHole(buf.AsSpan(20, 12)), Is.EqualTo((4096UL, 512u)));

        n = NbdStructuredReply.WriteNone(buf, 3);
        var h = NbdChunkHeader.Read(buf);
        Assert.That((n, h.Type, h.IsDone, h.Length), Is.EqualTo((20, NbdReplyType.None, true, 0u)));

        n = NbdStructuredReply.WriteError(buf, 5, NbdError.NotPermitted, "export is read-only");
        h = NbdChunkHeader.Read(buf);
        Assert.That(h.IsError && h.IsDone, Is.True);
        Assert.That(n, Is.EqualTo(NbdStructuredReply.ErrorSize("export is read-only")));
        Assert.That(NbdStructuredReply.ReadError(buf.AsSpan(20, (int)h.Length)), Is.EqualTo((NbdError.NotPermitted, "export is read-only")));
        Assert.Throws<ArgumentException>(() => NbdStructuredReply.WriteError(buf, 5, NbdError.None, "x"));
    }

    [Test]
    public void Block_status_chunk_is_context_id_then_descriptors()
    {
        var buf = new byte[64];
        int n = NbdStructuredReply.WriteBlockStatus(buf, NbdReplyFlags.Done, 1, 2,
            [new NbdBlockDescriptor(65536, 0), new NbdBlockDescriptor(4096, (uint)(NbdAllocationFlags.Hole | NbdAllocationFlags.Zero))]);
        Assert.That(n, Is.EqualTo(20 + 4 + 16));
        Assert.That(Convert.ToHexString(buf, 20, 20), Is.EqualTo("00000002" + "00010000" + "00000000" + "00001000" + "00000003"));
        var (id, d) = NbdStructuredReply.ReadBlockStatus(buf.AsSpan(20, n - 20));
        Assert.That(id, Is.EqualTo(2));
        Assert.That(d, Has.Length.EqualTo(2));
        Assert.That(d[1], Is.EqualTo(new NbdBlockDescriptor(4096, 3)));
        Assert.Throws<ArgumentException>(() => NbdStructuredReply.WriteBlockStatus(buf, 0, 1, 1, []));
        Assert.Throws<ArgumentException>(() => NbdStructuredReply.WriteBlockStatus(buf, 0, 1, 1, [new NbdBlockDescriptor(0, 0)]));
        Assert.Throws<NbdProtocolException>(() => NbdStructuredReply.ReadBlockStatus(buf.AsSpan(20, 10)));
    }

    [TestCase(0, NbdError.None)]
    [TestCase(-1, NbdError.NotPermitted)]
    [TestCase(30, NbdError.NotPermitted)]
    [TestCase(-5, NbdError.IO)]
    [TestCase(-28, NbdError.NoSpace)]
    [TestCase(27, NbdError.NoSpace)]
    [TestCase(122, NbdError.NoSpace)]
    [TestCase(-22, NbdError.Invalid)]
    [TestCase(-16, NbdError.IO)]
    [TestCase(-116, NbdError.IO)]
    [TestCase(-108, NbdError.Shutdown)]
    public void Errno_maps_to_the_errors_nbd_allows(int errno, NbdError expected) =>
        Assert.That(NbdErrors.FromErrno(errno), Is.EqualTo(expected));
}
