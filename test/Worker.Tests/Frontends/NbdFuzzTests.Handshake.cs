using System.Buffers.Binary;
using System.Net.Sockets;
using BlkTapCtrl.Protocol.Nbd;
using BlkTapCtrl.Testing;
using BlkTapCtrl.Worker.Frontends;
using CsCheck;

namespace BlkTapCtrl.Worker.Tests.Frontends;

/// <summary>Handshake fuzz: mutated and random negotiations against a reference framing of what was sent.</summary>
public partial class NbdFuzzTests
{
    // =============================== handshake ===============================

    private const int HandshakeImageBytes = 1 << 20;
    private static readonly byte[] HandshakeImage = TestBytes.Pattern(HandshakeImageBytes, 11);

    private static byte[] Option(NbdOption option, byte[] data)
    {
        var b = new byte[NbdOptionHeader.Size + data.Length];
        new NbdOptionHeader(option, (uint)data.Length).WriteTo(b);
        data.CopyTo(b, NbdOptionHeader.Size);
        return b;
    }

    /// <summary>Options a libnbd-like client sends while haggling.</summary>
    private static readonly byte[][] HagglingOptions =
    [
        Option(NbdOption.List, []),
        Option(NbdOption.Info, new NbdInfoRequest("disk", [NbdInfoType.BlockSize, NbdInfoType.Name]).Encode()),
        Option(NbdOption.StructuredReply, []),
        Option(NbdOption.SetMetaContext, new NbdMetaContextRequest("disk", [NbdNegotiation.BaseAllocation]).Encode()),
        Option(NbdOption.ListMetaContext, new NbdMetaContextRequest("", []).Encode()),
        Option(NbdOption.Info, new NbdInfoRequest("", []).Encode()),
    ];

    /// <summary>The option that ends haggling.</summary>
    private static readonly byte[][] FinalOptions =
    [
        Option(NbdOption.Go, new NbdInfoRequest("disk", [NbdInfoType.BlockSize]).Encode()),
        Option(NbdOption.ExportName, "disk"u8.ToArray()),
        Option(NbdOption.Abort, []),
        Option(NbdOption.Go, new NbdInfoRequest("", []).Encode()),
    ];

    /// <param name="Kind">0 flip a byte, 1 truncate, 2 insert bytes, 3 delete bytes, 4 a u32 anywhere, 5 an option's length field.</param>
    public sealed record Mutation(int Kind, int Pos, uint Value);

    /// <param name="RandomBytes">Non-null: send these instead of a negotiation.</param>
    /// <param name="HardClose">Close the socket after <paramref name="CutPercent"/> of the stream instead of half-closing after all of it.</param>
    public sealed record HandshakeCase(byte[]? RandomBytes, int[] Options, int Final, bool NoZeroes, Mutation[] Mutations,
        int PieceSeed, bool HardClose, int CutPercent);

    private static readonly Gen<uint> GenHugeU32 = Gen.Frequency(
        (3, Gen.OneOfConst(uint.MaxValue, 0x8000_0000u, NbdNegotiation.MaxOptionLength, NbdNegotiation.MaxOptionLength + 1, 4097u, 1u << 20)),
        (1, Gen.UInt));

    private static readonly Gen<Mutation> GenMutation = Gen.Frequency(
        (4, Gen.Select(Gen.Int[0, 3], Gen.Int[0, 1000], Gen.UInt, (k, p, v) => new Mutation(k, p, v))),
        (2, Gen.Select(Gen.Int[4, 5], Gen.Int[0, 1000], GenHugeU32, (k, p, v) => new Mutation(k, p, v))));

    private static readonly Gen<HandshakeCase> GenHandshake = Gen.Select(
        Gen.Frequency((1, Gen.Byte.Array[0, 200].Select(b => (byte[]?)b)), (5, Gen.Const((byte[]?)null))),
        Gen.Int[0, HagglingOptions.Length - 1].Array[0, 6],
        Gen.Int[0, FinalOptions.Length - 1],
        Gen.Bool,
        Gen.Frequency((1, Gen.Const(Array.Empty<Mutation>())), (4, GenMutation.Array[1, 4])),
        Gen.Int,
        Gen.Frequency((4, Gen.Const(false)), (1, Gen.Const(true))),
        Gen.Int[0, 100],
        (random, options, final, noZeroes, mutations, pieces, hardClose, cut) =>
            new HandshakeCase(random, options, final, noZeroes, mutations, pieces, hardClose, cut));

    private static string Describe(HandshakeCase c) =>
        $"{c} options [{string.Join(",", c.Options)}] mutations [{string.Join(", ", c.Mutations.Select(m => m.ToString()))}] stream {Convert.ToHexString(BuildNegotiation(c))}";

    private static byte[] BuildNegotiation(HandshakeCase c)
    {
        if (c.RandomBytes != null) return c.RandomBytes;
        var stream = new List<byte>();
        var optionStarts = new List<int>();
        var flags = new byte[4];
        NbdHandshake.WriteClientFlags(flags, NbdClientFlags.FixedNewstyle | (c.NoZeroes ? NbdClientFlags.NoZeroes : 0));
        stream.AddRange(flags);
        foreach (var o in c.Options.Select(i => HagglingOptions[i]).Append(FinalOptions[c.Final]))
        {
            optionStarts.Add(stream.Count);
            stream.AddRange(o);
        }
        foreach (var m in c.Mutations)
        {
            int pos = m.Pos % (stream.Count + 1);
            switch (m.Kind)
            {
                case 0:
                    if (pos < stream.Count) stream[pos] ^= (byte)(m.Value | 1);
                    break;
                case 1:
                    stream.RemoveRange(pos, stream.Count - pos);
                    break;
                case 2:
                    var inserted = new byte[m.Value % 16 + 1];
                    new Random((int)m.Value).NextBytes(inserted);
                    stream.InsertRange(pos, inserted);
                    break;
                case 3:
                    stream.RemoveRange(pos, Math.Min((int)(m.Value % 16) + 1, stream.Count - pos));
                    break;
                case 4 or 5:
                    if (m.Kind == 5) pos = optionStarts[m.Pos % optionStarts.Count] + 12; // the option's data length
                    var u32 = new byte[4];
                    BinaryPrimitives.WriteUInt32BigEndian(u32, m.Value);
                    for (int i = 0; i < 4 && pos + i < stream.Count; i++) stream[pos + i] = u32[i];
                    break;
            }
        }
        return [.. stream];
    }

    /// <summary>Sends <paramref name="bytes"/> in pieces of random size; false when the server closed first.</summary>
    private static bool SendInPieces(NbdTestClient c, ReadOnlySpan<byte> bytes, int seed)
    {
        var random = new Random(seed);
        try
        {
            while (!bytes.IsEmpty)
            {
                int n = Math.Min(bytes.Length, random.Next(4) switch { 0 => random.Next(1, 8), 1 => random.Next(1, 64), _ => random.Next(1, 64 * 1024) });
                c.Send(bytes[..n]);
                bytes = bytes[n..];
                if (random.Next(8) == 0) Thread.Yield();
            }
            return true;
        }
        catch (SocketException) { return false; } // EPIPE/ECONNRESET: the server dropped us, as it may
    }

    private static byte[] ReadToEnd(NbdTestClient c, int limit)
    {
        var all = new List<byte>();
        while (c.ReadExactlyOrEnd(1) is { } b)
        {
            all.Add(b[0]);
            int more = c.Available;
            if (more > 0) all.AddRange(c.ReadExactly(more));
            if (all.Count > limit) Assert.Fail($"the server sent more than {limit} bytes");
        }
        return [.. all];
    }

    [Test]
    public void Mutated_and_random_negotiations_are_answered_or_dropped_and_the_server_keeps_serving()
    {
        using var h = new NbdFrontendHarness(imageBytes: HandshakeImageBytes, prepareImage: p => File.WriteAllBytes(p, HandshakeImage));
        GenHandshake.Sample(c => RunHandshakeCase(h, c), iter: 150, threads: 1, print: Describe);
    }

    private static void RunHandshakeCase(NbdFrontendHarness h, HandshakeCase hc)
    {
        h.AssertLoopHealthy();
        var stream = BuildNegotiation(hc);
        using (var c = new NbdTestClient(h.SocketPath))
        {
            c.TimeoutMs = TimeoutMs;
            if (hc.HardClose)
            {
                SendInPieces(c, stream.AsSpan(0, stream.Length * hc.CutPercent / 100), hc.PieceSeed);
            }
            else
            {
                SendInPieces(c, stream, hc.PieceSeed);
                try { c.ShutdownSend(); } catch (SocketException) { }
                // No hang: after our EOF the server must finish and close within the timeout.
                var output = ReadToEnd(c, 64 << 20);
                CheckNegotiationOutput(stream, output);
            }
        }
        AssertServerIdle(h, connections: 0);
        using var fresh = h.Connect();
        for (uint off = 0; off < HandshakeImageBytes; off += 256 << 10)
            Assert.That(fresh.Read(off, 256 << 10).AsSpan().SequenceEqual(HandshakeImage.AsSpan((int)off, 256 << 10)), Is.True, $"image at {off}");
        fresh.Disconnect();
        Assert.That(fresh.IsClosedByServer(TimeoutMs), Is.True);
        Assert.That(File.ReadAllBytes(h.ImagePath).AsSpan().SequenceEqual(HandshakeImage), Is.True, "the image file changed");
    }

    /// <summary>
    /// What proto.md makes of <paramref name="sent"/>: the greeting; then, option by option in order, replies
    /// for that option ending in ACK or an error (ERR_TOO_BIG at once for data over the limit); EXPORT_NAME
    /// of a known export answered with size and flags, of anything else by a close; ABORT acknowledged and
    /// closed; after a successful GO or EXPORT_NAME, transmission (not checked here). Anything that cannot go
    /// on (bad flags, bad magic, a truncated option at our EOF) ends with the close and nothing more.
    /// </summary>
    private static void CheckNegotiationOutput(byte[] sent, byte[] output)
    {
        int o = 0;
        ReadOnlySpan<byte> Take(int n)
        {
            if (output.Length - o < n)
                Assert.Fail($"server output ends at {output.Length}, expected {n} more bytes at {o}");
            o += n;
            return output.AsSpan(o - n, n);
        }
        void End()
        {
            if (o != output.Length) Assert.Fail($"expected the close at output byte {o}, the server sent {output.Length - o} more");
        }
        Assert.That(NbdHandshake.ReadGreeting(Take(NbdHandshake.GreetingSize)), Is.EqualTo(NbdNegotiation.ServerFlags));
        if (sent.Length < 4) { End(); return; }
        uint flags = BinaryPrimitives.ReadUInt32BigEndian(sent);
        if ((flags & ~3u) != 0) { End(); return; }
        bool noZeroes = (flags & 2) != 0;
        long pos = 4;
        while (true)
        {
            if (sent.Length - pos < NbdOptionHeader.Size) { End(); return; }
            if (BinaryPrimitives.ReadUInt64BigEndian(sent.AsSpan((int)pos)) != NbdMagic.Option) { End(); return; }
            var option = (NbdOption)BinaryPrimitives.ReadUInt32BigEndian(sent.AsSpan((int)pos + 8));
            uint length = BinaryPrimitives.ReadUInt32BigEndian(sent.AsSpan((int)pos + 12));
            pos += NbdOptionHeader.Size;
            if (length > NbdNegotiation.MaxOptionLength)
            {
                NbdOptionReplyHeader.TryRead(Take(NbdOptionReplyHeader.Size), out var big);
                Assert.That((big.Option, big.Type), Is.EqualTo((option, NbdOptionReplyType.ErrorTooBig)));
                Take((int)big.Length);
                pos += length;
                continue;
            }
            if (sent.Length - pos < length) { End(); return; }
            var data = sent.AsSpan((int)pos, (int)length);
            pos += length;
            if (option == NbdOption.ExportName)
            {
                if (data.IsEmpty || data.SequenceEqual("disk"u8))
                {
                    var reply = Take(noZeroes ? NbdHandshake.ExportNameReplySizeNoZeroes : NbdHandshake.ExportNameReplySize);
                    Assert.That(BinaryPrimitives.ReadUInt64BigEndian(reply), Is.EqualTo((ulong)HandshakeImageBytes));
                    return; // transmission
                }
                End();
                return;
            }
            NbdOptionReplyHeader last;
            do
            {
                NbdOptionReplyHeader.TryRead(Take(NbdOptionReplyHeader.Size), out last);
                Assert.That(last.Option, Is.EqualTo(option), "a reply answers the option sent");
                Assert.That(last.IsError || last.Type is NbdOptionReplyType.Ack or NbdOptionReplyType.Server
                    or NbdOptionReplyType.Info or NbdOptionReplyType.MetaContext, Is.True, $"reply type {last.Type}");
                Take((int)last.Length);
            } while (!last.IsError && last.Type != NbdOptionReplyType.Ack);
            if (option == NbdOption.Abort) { End(); return; }
            if (option == NbdOption.Go && !last.IsError) return; // transmission
        }
    }
}
