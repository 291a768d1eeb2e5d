using System.Buffers.Binary;
using System.Text;
using BlkTapCtrl.Protocol.XenStore;

namespace BlkTapCtrl.Protocol.Tests.XenStore;

public class XsCodecTests
{
    [Test]
    public void Message_type_numbers_are_those_of_xs_wire_h()
    {
        Assert.Multiple(() =>
        {
            Assert.That((uint)XsMessageType.Control, Is.EqualTo(0));
            Assert.That((uint)XsMessageType.Directory, Is.EqualTo(1));
            Assert.That((uint)XsMessageType.TransactionStart, Is.EqualTo(6));
            Assert.That((uint)XsMessageType.Write, Is.EqualTo(11));
            Assert.That((uint)XsMessageType.WatchEvent, Is.EqualTo(15));
            Assert.That((uint)XsMessageType.Error, Is.EqualTo(16));
            Assert.That((uint)XsMessageType.SetTarget, Is.EqualTo(19));
            Assert.That((uint)XsMessageType.ResetWatches, Is.EqualTo(21));
            Assert.That((uint)XsMessageType.DirectoryPart, Is.EqualTo(22));
            Assert.That(XsMessageTypes.IsDefined((XsMessageType)20), Is.False, "XS_RESTRICT was removed");
            Assert.That(XsMessageTypes.IsDefined((XsMessageType)23), Is.False);
        });
    }

    [Test]
    public void Header_is_four_little_endian_words()
    {
        var buf = new byte[16];
        new XsHeader(XsMessageType.Write, 0x01020304, 7, 4096).Write(buf);
        Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(buf), Is.EqualTo(11u));
        Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(buf.AsSpan(4)), Is.EqualTo(0x01020304u));
        Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(buf.AsSpan(8)), Is.EqualTo(7u));
        Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(buf.AsSpan(12)), Is.EqualTo(4096u));
        Assert.That(XsHeader.Read(buf), Is.EqualTo(new XsHeader(XsMessageType.Write, 0x01020304, 7, 4096)));
    }

    [Test]
    public void Error_names_and_errno_numbers_round_trip()
    {
        Assert.That(Encoding.ASCII.GetString(XsErrors.Payload(XsError.EAGAIN)), Is.EqualTo("EAGAIN\0"));
        Assert.That(XsErrors.Parse("ENOENT\0"u8), Is.EqualTo(XsError.ENOENT));
        Assert.That(XsErrors.Parse("EISCONN"u8), Is.EqualTo(XsError.EISCONN));
        Assert.That((int)XsErrors.Parse("E2BIG\0"u8), Is.EqualTo(7));
        Assert.That(XsErrors.Parse("EWHATEVER\0"u8), Is.EqualTo(XsError.EINVAL), "unknown names map to EINVAL");
        foreach (var e in Enum.GetValues<XsError>())
            Assert.That(XsErrors.Parse(XsErrors.Payload(e)), Is.EqualTo(e));
    }

    [TestCase("/", true)]
    [TestCase("/local/domain/0", true)]
    [TestCase("relative/path-ok_@", true)]
    [TestCase("", false)]
    [TestCase("/a//b", false)]
    [TestCase("/a/", false)]
    [TestCase("/a b", false)]
    [TestCase("/a.b", false)]
    [TestCase("/caf\u00e9", false)]
    public void Path_validation_follows_xenstore_txt(string path, bool valid)
    {
        Assert.That(XsPath.IsValid(path), Is.EqualTo(valid), XsPath.Problem(path));
    }

    [Test]
    public void Path_length_limits_differ_for_absolute_and_relative_paths()
    {
        Assert.That(XsPath.IsValid("/" + new string('a', 3071)), Is.True);
        Assert.That(XsPath.Problem("/" + new string('a', 3072)), Does.Contain("3072"));
        Assert.That(XsPath.IsValid(new string('a', 2048)), Is.True);
        Assert.That(XsPath.Problem(new string('a', 2049)), Does.Contain("2048"));
    }

    [Test]
    public void Ancestry_checks_respect_component_boundaries()
    {
        Assert.That(XsPath.IsAtOrBelow("/a/b/c", "/a/b"), Is.True);
        Assert.That(XsPath.IsAtOrBelow("/a/b", "/a/b"), Is.True);
        Assert.That(XsPath.IsAtOrBelow("/a/bc", "/a/b"), Is.False);
        Assert.That(XsPath.IsAtOrBelow("/a", "/"), Is.True);
        Assert.That(XsPath.Parent("/a/b"), Is.EqualTo("/a"));
        Assert.That(XsPath.Parent("/a"), Is.EqualTo("/"));
    }

    [TestCase("b0", XsAccess.Both, 0u)]
    [TestCase("r5", XsAccess.Read, 5u)]
    [TestCase("w65535", XsAccess.Write, 65535u)]
    [TestCase("n12", XsAccess.None, 12u)]
    public void Permission_strings_parse_and_format(string text, XsAccess access, uint dom)
    {
        var perm = XsPermission.Parse(text);
        Assert.That(perm, Is.EqualTo(new XsPermission(access, dom)));
        Assert.That(perm.ToString(), Is.EqualTo(text));
    }

    [TestCase("x0")]
    [TestCase("b")]
    [TestCase("b-1")]
    [TestCase("r65536")]
    [TestCase("b1a")]
    public void Bad_permission_strings_are_rejected_with_the_text(string text)
    {
        var e = Assert.Throws<XsProtocolException>(() => XsPermission.Parse(text));
        Assert.That(e!.Message, Does.Contain(text));
    }

    [Test]
    public void Frame_builder_writes_header_and_pieces_and_refuses_oversized_payloads()
    {
        var frame = new byte[XsLimits.FrameMax];
        var b = new XsFrameBuilder(frame, XsMessageType.Write, 9, 3);
        b.StringNul("/a");
        b.Bytes("xyz"u8);
        int size = b.Finish();
        Assert.That(size, Is.EqualTo(16 + 6));
        Assert.That(XsHeader.Read(frame), Is.EqualTo(new XsHeader(XsMessageType.Write, 9, 3, 6)));
        Assert.That(frame.AsSpan(16, 6).ToArray(), Is.EqualTo("/a\0xyz"u8.ToArray()));

        var e = Assert.Throws<XsProtocolException>(() =>
        {
            var big = new XsFrameBuilder(new byte[XsLimits.FrameMax + 100], XsMessageType.Write, 1, 0);
            big.Bytes(new byte[XsLimits.PayloadMax + 1]);
        });
        Assert.That(e!.Message, Does.Contain("4096"));
    }

    [Test]
    public void Reader_reassembles_frames_split_into_single_bytes()
    {
        // libxenstore writes header and payload pieces separately; any split must reassemble.
        var stream = new List<byte>();
        for (uint i = 1; i <= 3; i++)
        {
            var f = new byte[XsLimits.FrameMax];
            var b = new XsFrameBuilder(f, XsMessageType.Read, i, 0);
            b.StringNul("/node" + i);
            stream.AddRange(f.AsSpan(0, b.Finish()).ToArray());
        }
        using var reader = new XsFrameReader();
        var got = new List<(uint, string)>();
        foreach (var by in stream)
        {
            var fill = reader.GetFillBuffer();
            fill.Span[0] = by;
            reader.Advance(1);
            while (reader.TryRead(out var h, out var p))
                got.Add((h.RequestId, Encoding.ASCII.GetString(p.Span)));
        }
        Assert.That(got, Is.EqualTo(new[] { (1u, "/node1\0"), (2u, "/node2\0"), (3u, "/node3\0") }));
        Assert.That(reader.Buffered, Is.Zero);
    }

    [Test]
    public void Reader_takes_many_frames_from_one_read_and_keeps_a_partial_tail()
    {
        var data = new byte[200 * 20 + 16];
        int off = 0;
        for (uint i = 0; i < 200; i++)
        {
            var b = new XsFrameBuilder(data.AsSpan(off), XsMessageType.Read, i, 0);
            b.String("abcd");
            off += b.Finish();
        }
        new XsHeader(XsMessageType.Read, 999, 0, 4).Write(data.AsSpan(off, 16));
        using var reader = new XsFrameReader();
        data.AsSpan(0, off + 5).CopyTo(reader.GetFillBuffer().Span);
        reader.Advance(off + 5);
        int count = 0;
        while (reader.TryRead(out var h, out _)) Assert.That(h.RequestId, Is.EqualTo((uint)count++));
        Assert.That(count, Is.EqualTo(200));
        Assert.That(reader.Buffered, Is.EqualTo(5));
    }

    [Test]
    public void Reader_rejects_a_header_announcing_more_than_the_payload_limit()
    {
        using var reader = new XsFrameReader();
        new XsHeader(XsMessageType.Write, 1, 0, 4097).Write(reader.GetFillBuffer().Span);
        reader.Advance(16);
        var e = Assert.Throws<XsProtocolException>(() => reader.TryRead(out _, out _));
        Assert.That(e!.Message, Does.Contain("4097"));
    }

    [Test]
    public void Payload_parsers_handle_watch_events_permissions_transactions_and_directory_parts()
    {
        Assert.That(XsPayload.WatchEvent("/a/b\0tok\0"u8), Is.EqualTo(("/a/b", "tok")));
        Assert.That(XsPayload.Permissions("b0\0r5\0"u8), Is.EqualTo(new[] { new XsPermission(XsAccess.Both, 0), new XsPermission(XsAccess.Read, 5) }));
        Assert.That(XsPayload.TransactionId("42\0"u8), Is.EqualTo(42u));
        Assert.Throws<XsProtocolException>(() => XsPayload.TransactionId("x\0"u8));
        var (gen, children, complete) = XsPayload.DirectoryPart("7\0a\0b\0\0"u8);
        Assert.That((gen, complete), Is.EqualTo(("7", true)));
        Assert.That(children, Is.EqualTo(new[] { "a", "b" }));
        Assert.That(XsPayload.Strings("a\0b\0"u8), Is.EqualTo(new[] { "a", "b" }));
        Assert.Throws<XsProtocolException>(() => XsPayload.Strings("a\0b"u8));
        Assert.That(XsPayload.Strings("a\0b"u8, allowUnterminatedLast: true), Is.EqualTo(new[] { "a", "b" }));
    }
}
