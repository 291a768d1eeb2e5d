using System.Buffers.Binary;
using System.Net.Sockets;
using BlkTapCtrl.Protocol.Control;
using BlkTapCtrl.Protocol.Nbd;
using BlkTapCtrl.Testing;
using BlkTapCtrl.Vhd.Format;
using BlkTapCtrl.Vhd.Operations;
using BlkTapCtrl.Worker.Frontends;
using CsCheck;

namespace BlkTapCtrl.Worker.Tests.Frontends;

/// <summary>Transmission fuzz: mutated request streams against proto.md answers and a model of the image.</summary>
public partial class NbdFuzzTests
{
    // =============================== transmission ===============================

    private const int TxImageBytes = 2 << 20;
    private const int TxSectors = TxImageBytes / 512;
    private static readonly byte[] TxImage = TestBytes.Pattern(TxImageBytes, 12);
    private static readonly byte[] ZeroSector = new byte[512];

    /// <summary>One request as the fuzz means to send it; the server's view comes from <see cref="Frame"/>.</summary>
    public sealed record Item(uint Magic, ushort Command, ushort Flags, ulong Offset, uint Length, bool ShortPayload);

    /// <summary>A write and read-back by the well-behaved client connected alongside.</summary>
    public sealed record GoodOp(int Sector, int Count, int Seed);

    /// <param name="End">0 stay connected, 1 half-close after <paramref name="CutPercent"/> of the stream, 2 close the socket after it.</param>
    public sealed record TxCase(bool Structured, bool BaseAllocation, Item[] Items, GoodOp[] Good, int End, int CutPercent, int Seed);

    private static readonly Gen<ushort> GenCommand = Gen.Frequency(
        (16, Gen.Const((ushort)NbdCommand.Read)), (16, Gen.Const((ushort)NbdCommand.Write)), (6, Gen.Const((ushort)NbdCommand.WriteZeroes)),
        (4, Gen.Const((ushort)NbdCommand.Trim)), (4, Gen.Const((ushort)NbdCommand.Flush)), (2, Gen.Const((ushort)NbdCommand.Cache)),
        (6, Gen.Const((ushort)NbdCommand.BlockStatus)), (1, Gen.Const((ushort)NbdCommand.Disconnect)), (2, Gen.UShort));

    private static readonly Gen<ulong> GenOffset = Gen.Frequency(
        (20, Gen.Int[0, TxSectors - 64].Select(s => (ulong)s * 512)),
        (2, Gen.Int[0, 8].Select(k => (ulong)(TxImageBytes - k * 512))),
        (1, Gen.Int[1, 4096].Select(k => (ulong)TxImageBytes + (ulong)k)),
        (1, Gen.ULong[0, 4096].Select(k => ulong.MaxValue - k)),
        (1, Gen.ULong),
        (1, Gen.Int[0, TxImageBytes - 1].Select(x => (ulong)x)));

    private static readonly Gen<uint> GenLength = Gen.Frequency(
        (20, Gen.Int[1, 64].Select(n => (uint)n * 512)),
        (1, Gen.Const(0u)),
        (1, Gen.UInt[1, 4096]),
        (1, Gen.OneOfConst(NbdExport.MaximumPayload, NbdExport.MaximumPayload + 512, uint.MaxValue, uint.MaxValue & ~511u)),
        (1, Gen.UInt),
        (1, Gen.Int[1, TxSectors].Select(n => (uint)n * 512)));

    private static readonly Gen<ushort> GenFlags = Gen.Frequency(
        (16, Gen.Const((ushort)0)), (3, Gen.OneOfConst<ushort>(1, 2, 4, 8, 16, 3, 9)), (1, Gen.UShort));

    private static readonly Gen<Item> GenItem = Gen.Select(
        Gen.Frequency((60, Gen.Const(NbdMagic.Request)), (1, Gen.UInt)), GenCommand, GenFlags, GenOffset, GenLength,
        Gen.Int[0, 15].Select(x => x == 0),
        (m, c, f, o, l, s) => new Item(m, c, f, o, l, s));

    private static readonly Gen<TxCase> GenTx = Gen.Select(
        Gen.Bool, Gen.Frequency((3, Gen.Const(true)), (1, Gen.Const(false))),
        GenItem.Array[1, 24],
        Gen.Select(Gen.Int[0, TxSectors - 1], Gen.Int[1, 64], Gen.Int, (s, n, d) => new GoodOp(s, n, d)).Array[0, 3],
        Gen.Frequency((4, Gen.Const(0)), (2, Gen.Const(1)), (1, Gen.Const(2))),
        Gen.Frequency((3, Gen.Const(100)), (1, Gen.Int[0, 99])),
        Gen.Int,
        (st, ba, items, good, end, cut, seed) => new TxCase(st, ba, items, good, end, cut, seed));

    private static byte[] BuildRequests(TxCase c)
    {
        var stream = new MemoryStream();
        var header = new byte[NbdRequest.Size];
        for (int i = 0; i < c.Items.Length; i++)
        {
            var it = c.Items[i];
            new NbdRequest((NbdCommandFlags)it.Flags, (NbdCommand)it.Command, (ulong)i + 1, it.Offset, it.Length).WriteTo(header);
            BinaryPrimitives.WriteUInt32BigEndian(header, it.Magic);
            stream.Write(header);
            if (it.Command != (ushort)NbdCommand.Write) continue;
            // A payload shorter than declared makes the server take what follows as the rest of it.
            uint n = it.ShortPayload ? Math.Min(it.Length / 2, 64 * 1024) : it.Length <= (1 << 20) ? it.Length : Math.Min(it.Length, 4096);
            stream.Write(TestBytes.Pattern((int)n, c.Seed ^ (i * 7919)));
        }
        return stream.ToArray();
    }

    private enum Terminal { None, Partial, Violation, Disconnect }

    /// <summary>A request as the server sees it, its reply, and what it may have done to the image.</summary>
    private sealed class Sent(NbdRequest header, byte[]? payload, bool complete)
    {
        public readonly NbdRequest Header = header;
        public readonly byte[]? Payload = payload;
        public readonly bool Complete = complete;
        public Reply? Reply;
    }

    private sealed class Reply
    {
        public NbdError Error;
        public byte[]? Data;
        public bool[]? Covered;
        public NbdBlockDescriptor[]? Extents;
        public bool Done;
    }

    /// <summary>
    /// proto.md's framing of a request stream: 28-byte headers, a bad magic ends the session, a WRITE is
    /// followed by exactly its length of payload whether or not the request is valid, DISC ends it too.
    /// </summary>
    private static (List<Sent> Requests, Terminal End) Frame(ReadOnlySpan<byte> bytes)
    {
        var list = new List<Sent>();
        int pos = 0;
        while (true)
        {
            if (bytes.Length - pos < NbdRequest.Size) return (list, pos == bytes.Length ? Terminal.None : Terminal.Partial);
            NbdRequest r;
            try { NbdRequest.TryRead(bytes[pos..], out r); }
            catch (NbdProtocolException) { return (list, Terminal.Violation); }
            pos += NbdRequest.Size;
            if (r.Command == NbdCommand.Disconnect) return (list, Terminal.Disconnect);
            if (r.Command != NbdCommand.Write)
            {
                list.Add(new Sent(r, null, true));
                continue;
            }
            if ((ulong)(bytes.Length - pos) < r.Length)
            {
                list.Add(new Sent(r, null, false));
                return (list, Terminal.Partial);
            }
            // Only a payload the image can take is kept (valid writes are at most 32 MiB).
            list.Add(new Sent(r, r.Length <= NbdExport.MaximumPayload ? bytes.Slice(pos, (int)r.Length).ToArray() : null, true));
            pos += (int)r.Length;
        }
    }

    /// <summary>
    /// The answers proto.md allows: null when the request must succeed; otherwise the errors it may get,
    /// and whether success is allowed too (zero lengths, a FLUSH with a range: unspecified).
    /// </summary>
    private static (bool MaySucceed, HashSet<NbdError> Errors) Expect(NbdRequest r, bool structured, bool baseAllocation, bool readOnly)
    {
        var errors = new HashSet<NbdError>();
        var allowed = NbdCommandFlags.Fua;
        switch (r.Command)
        {
            case NbdCommand.Read: if (structured) allowed |= NbdCommandFlags.DontFragment; break;
            case NbdCommand.Write or NbdCommand.Flush or NbdCommand.Trim or NbdCommand.Cache: break;
            case NbdCommand.WriteZeroes: allowed |= NbdCommandFlags.NoHole; break;
            case NbdCommand.BlockStatus: allowed |= NbdCommandFlags.RequestOne; break;
            default: return (false, [NbdError.Invalid]);
        }
        bool doubtful = false;
        if ((r.Flags & ~allowed) != 0) errors.Add(NbdError.Invalid);
        bool writes = r.Command is NbdCommand.Write or NbdCommand.Trim or NbdCommand.WriteZeroes;
        if (writes && readOnly) errors.Add(NbdError.NotPermitted);
        if (r.Command == NbdCommand.Flush)
        {
            doubtful = (r.Offset | r.Length) != 0;
        }
        else
        {
            if (r.Command == NbdCommand.BlockStatus && !(structured && baseAllocation)) errors.Add(NbdError.Invalid);
            if (r.Offset > TxImageBytes || r.Length > TxImageBytes - r.Offset)
                // proto.md: ENOSPC for a write (and write zeroes) beyond the end, EINVAL for a read or trim.
                errors.Add(r.Command is NbdCommand.Write or NbdCommand.WriteZeroes ? NbdError.NoSpace : NbdError.Invalid);
            if (r.Command is NbdCommand.Read or NbdCommand.Write && r.Length > NbdExport.MaximumPayload) errors.Add(NbdError.Invalid);
            if (r.Command is NbdCommand.Read or NbdCommand.Write or NbdCommand.WriteZeroes && ((r.Offset | r.Length) & 511) != 0)
                errors.Add(NbdError.Invalid);
            if (r.Command == NbdCommand.BlockStatus && r.Length == 0) errors.Add(NbdError.Invalid);
            if (r.Length == 0 && r.Command != NbdCommand.BlockStatus) doubtful = true;
        }
        if (errors.Count > 0) return (false, errors);
        return doubtful ? (true, [NbdError.Invalid]) : (true, errors);
    }

    /// <summary>
    /// Reads one reply (all chunks of a structured one) into its request's <see cref="Reply"/>; false at
    /// the server's close. Checks the framing: a READ's data comes in chunks inside its range, a simple
    /// reply never follows a READ once structured replies are on, no cookie is answered twice.
    /// </summary>
    private static bool ReadReply(NbdTestClient c, Dictionary<ulong, Sent> byCookie, bool structured,
        Func<NbdRequest, bool> maySucceed)
    {
        var first = c.ReadExactlyOrEnd(4);
        if (first == null) return false;
        uint magic = BinaryPrimitives.ReadUInt32BigEndian(first);
        if (magic == NbdMagic.SimpleReply)
        {
            var simple = NbdSimpleReply.Read([.. first, .. c.ReadExactly(NbdSimpleReply.Size - 4)]);
            Assert.That(byCookie.TryGetValue(simple.Cookie, out var s), Is.True, $"reply to unknown cookie {simple.Cookie}");
            Assert.That(s!.Reply, Is.Null, $"cookie {simple.Cookie} answered twice");
            var r = s.Header;
            if (structured) Assert.That(r.Command, Is.Not.EqualTo(NbdCommand.Read).And.Not.EqualTo(NbdCommand.BlockStatus), "simple reply to a READ or BLOCK_STATUS with structured replies on");
            s.Reply = new Reply { Error = simple.Error, Done = true };
            if (simple.Error == NbdError.None && r.Command == NbdCommand.Read)
            {
                Assert.That(maySucceed(r), Is.True, $"success for {r}");
                s.Reply.Data = c.ReadExactly((int)r.Length);
            }
            return true;
        }
        Assert.That(structured, Is.True, $"reply magic 0x{magic:x8} without structured replies negotiated");
        while (true)
        {
            var h = NbdChunkHeader.Read([.. first, .. c.ReadExactly(NbdChunkHeader.Size - 4)]);
            Assert.That(h.Length, Is.LessThanOrEqualTo(NbdExport.MaximumPayload + 64u), "chunk length");
            var payload = c.ReadExactly((int)h.Length);
            Assert.That(byCookie.TryGetValue(h.Cookie, out var s), Is.True, $"chunk for unknown cookie {h.Cookie}");
            var reply = s!.Reply ??= new Reply();
            Assert.That(reply.Done, Is.False, $"cookie {h.Cookie} answered after its last chunk");
            var r = s.Header;
            switch (h.Type)
            {
                case NbdReplyType.Error or NbdReplyType.ErrorOffset:
                    var (error, message) = NbdStructuredReply.ReadError(payload);
                    Assert.That(error, Is.Not.EqualTo(NbdError.None));
                    Assert.That(message, Is.Not.Empty, "an error chunk says why");
                    reply.Error = error;
                    break;
                case NbdReplyType.OffsetData or NbdReplyType.OffsetHole:
                    Assert.That(r.Command, Is.EqualTo(NbdCommand.Read));
                    Assert.That(maySucceed(r), Is.True, $"data for {r}");
                    ulong at = NbdStructuredReply.ReadOffset(payload);
                    uint n = h.Type == NbdReplyType.OffsetData ? (uint)payload.Length - 8 : NbdStructuredReply.ReadOffsetHole(payload).Length;
                    Assert.That(at >= r.Offset && at + n <= r.Offset + r.Length, Is.True, $"chunk {at}+{n} outside {r.Offset}+{r.Length}");
                    reply.Data ??= new byte[r.Length];
                    reply.Covered ??= new bool[r.Length];
                    for (uint i = 0; i < n; i++)
                    {
                        int k = (int)(at - r.Offset + i);
                        Assert.That(reply.Covered[k], Is.False, "a byte sent twice");
                        reply.Covered[k] = true;
                        reply.Data[k] = h.Type == NbdReplyType.OffsetData ? payload[8 + (int)i] : (byte)0;
                    }
                    break;
                case NbdReplyType.BlockStatus:
                    Assert.That(r.Command, Is.EqualTo(NbdCommand.BlockStatus));
                    var (id, extents) = NbdStructuredReply.ReadBlockStatus(payload);
                    Assert.That(id, Is.EqualTo(NbdNegotiation.BaseAllocationContextId));
                    reply.Extents = extents;
                    break;
                case NbdReplyType.None:
                    Assert.That(h.IsDone, Is.True);
                    break;
                default:
                    Assert.Fail($"chunk type {h.Type}");
                    break;
            }
            if (h.IsDone)
            {
                reply.Done = true;
                return true;
            }
            first = c.ReadExactly(4);
        }
    }

    /// <summary>Per sector, the contents that may be there: before the session, and written during it.</summary>
    private sealed class ImageModel
    {
        private readonly byte[] _before;
        // sector -> contents written during the session that were acknowledged, or may have landed
        private readonly List<byte[]>?[] _acked = new List<byte[]>?[TxSectors];
        private readonly List<byte[]>?[] _maybe = new List<byte[]>?[TxSectors];

        public ImageModel(byte[] before) => _before = before;

        public void Write(ulong offset, byte[]? data, bool acked)
        {
            for (int s = 0; s < (data?.Length ?? 0) / 512; s++)
                Add(acked ? _acked : _maybe, (int)(offset / 512) + s, data!.AsSpan(s * 512, 512).ToArray());
        }

        public void Zero(ulong offset, ulong length, bool acked)
        {
            for (ulong s = offset / 512; s < (offset + length + 511) / 512 && s < TxSectors; s++)
                Add(acked ? _acked : _maybe, (int)s, ZeroSector);
        }

        private static void Add(List<byte[]>?[] to, int sector, byte[] value) => (to[sector] ??= new()).Add(value);

        /// <summary>Anything from the session may be read while it runs.</summary>
        public bool MayRead(int sector, ReadOnlySpan<byte> data) =>
            data.SequenceEqual(_before.AsSpan(sector * 512, 512)) || Contains(_acked[sector], data) || Contains(_maybe[sector], data);

        /// <summary>Afterwards: an acknowledged write landed (one of them, or a later unacknowledged one); else the old data or an unacknowledged one.</summary>
        public bool MayEndWith(int sector, ReadOnlySpan<byte> data) =>
            Contains(_acked[sector], data) || Contains(_maybe[sector], data)
            || (_acked[sector] == null && data.SequenceEqual(_before.AsSpan(sector * 512, 512)));

        private static bool Contains(List<byte[]>? values, ReadOnlySpan<byte> data)
        {
            if (values == null) return false;
            foreach (var v in values)
                if (data.SequenceEqual(v)) return true;
            return false;
        }
    }

    /// <param name="vhd">A fresh sparse VHD instead of a raw file full of data: reads of unwritten ranges
    /// are answered as holes, BLOCK_STATUS sees them, writes allocate.</param>
    [TestCase(false, false)]
    [TestCase(true, false)]
    [TestCase(false, true)]
    public void Mutated_request_streams_get_proto_md_answers_and_only_acknowledged_writes_change_the_image(bool readOnly, bool vhd)
    {
        GenTx.Sample(c => RunTxCase(c, readOnly, vhd), iter: 32, threads: 1,
            print: c => $"{c} items [{string.Join(", ", c.Items.Select(i => i.ToString()))}] good [{string.Join(", ", c.Good.Select(g => g.ToString()))}]");
    }

    private static void RunTxCase(TxCase tc, bool readOnly, bool vhd)
    {
        byte[]? pristine = null;
        using var h = vhd
            ? new NbdFrontendHarness(readOnly: readOnly, type: DriverType.Vhd, prepareImage: p =>
            {
                File.Delete(p);
                VhdCreator.Create(p, new VhdCreateOptions { SizeBytes = TxImageBytes, Type = DiskType.Dynamic });
                pristine = File.ReadAllBytes(p);
            })
            : new NbdFrontendHarness(imageBytes: TxImageBytes, readOnly: readOnly, prepareImage: p => File.WriteAllBytes(p, pristine = TxImage));
        var model = new ImageModel(vhd ? new byte[TxImageBytes] : TxImage);
        using var good = h.Connect();
        good.TimeoutMs = TimeoutMs;
        using var fuzz = new NbdTestClient(h.SocketPath);
        fuzz.TimeoutMs = TimeoutMs;
        fuzz.Connect(tc.Structured, tc.BaseAllocation, "disk");

        var stream = BuildRequests(tc);
        int sentLength = tc.End == 0 ? stream.Length : stream.Length * tc.CutPercent / 100;
        var (requests, terminal) = Frame(stream.AsSpan(0, sentLength));
        var byCookie = requests.ToDictionary(r => r.Header.Cookie);
        bool MaySucceed(NbdRequest r) => Expect(r, tc.Structured, tc.BaseAllocation, readOnly).MaySucceed;

        var sender = Task.Run(() =>
        {
            bool all = SendInPieces(fuzz, stream.AsSpan(0, sentLength), tc.Seed);
            if (all && tc.End == 1)
                try { fuzz.ShutdownSend(); } catch (SocketException) { }
        });

        // The other client writes and reads back while the fuzzed session runs.
        var goodReads = new List<(ulong Offset, byte[] Data)>();
        foreach (var g in tc.Good)
        {
            int count = Math.Min(g.Count, TxSectors - g.Sector);
            var data = TestBytes.Pattern(count * 512, g.Seed);
            var error = good.Write((ulong)g.Sector * 512, data);
            Assert.That(error, Is.EqualTo(readOnly ? NbdError.NotPermitted : NbdError.None), "the well-behaved client's write");
            if (error == NbdError.None) model.Write((ulong)g.Sector * 512, data, acked: true);
            goodReads.Add(((ulong)g.Sector * 512, good.Read((ulong)g.Sector * 512, (uint)count * 512)));
        }

        if (tc.End == 2)
        {
            Assert.That(sender.Wait(TimeoutMs * 2), Is.True, "sending hung");
            fuzz.Dispose();
        }
        else
        {
            // Replies that must come: every request of a session the server cannot end on its own
            // (a bad magic ends it, a half-close ends it, DISC answers all and then ends it).
            var required = requests.Where(r => r.Complete || !MaySucceed(r.Header)).ToList();
            bool untilClose = tc.End == 1 || terminal is Terminal.Violation or Terminal.Disconnect;
            while (untilClose || required.Any(r => r.Reply is not { Done: true }))
                if (!ReadReply(fuzz, byCookie, tc.Structured, MaySucceed))
                    break;
            Assert.That(sender.Wait(TimeoutMs * 2), Is.True, "sending hung");
            if (tc.End == 0 && terminal != Terminal.Violation)
                Assert.That(required.Where(r => r.Reply == null).Select(r => r.Header), Is.Empty, "requests left unanswered");
            if (tc.End == 0 && terminal == Terminal.None)
            {
                // Still in step: one more request is answered, and DISC closes.
                fuzz.SendRequest(NbdCommand.Read, 0, 512);
                Assert.That(fuzz.ReadReply().Error, Is.EqualTo(NbdError.None), "the session is still in step");
                fuzz.Disconnect();
                Assert.That(fuzz.IsClosedByServer(TimeoutMs), Is.True, "DISC closes");
            }
            fuzz.Dispose();
        }

        // Every answer is one proto.md allows; writes change the model by what their answers say.
        foreach (var s in requests)
        {
            var r = s.Header;
            var (maySucceed, errors) = Expect(r, tc.Structured, tc.BaseAllocation, readOnly);
            if (s.Reply is { } reply)
            {
                Assert.That(reply.Done, Is.True, $"{r}: reply cut short");
                if (reply.Error != NbdError.None)
                    Assert.That(errors, Does.Contain(reply.Error), $"{r}: error {reply.Error}");
                else
                    Assert.That(maySucceed, Is.True, $"{r}: success, expected one of {string.Join(",", errors)}");
            }
            bool landed = s.Reply is { Error: NbdError.None };
            bool mayHaveLanded = maySucceed && s.Complete && s.Reply == null;
            if (!landed && !mayHaveLanded) continue;
            switch (r.Command)
            {
                case NbdCommand.Write: model.Write(r.Offset, s.Payload, landed); break;
                case NbdCommand.WriteZeroes: model.Zero(r.Offset, r.Length, landed); break;
                // proto.md: a trimmed range reads back as anything; this server keeps the data, zeroes are allowed too.
                case NbdCommand.Trim: if (r.Length > 0 && r.Offset < TxImageBytes) model.Zero(r.Offset, r.Length, acked: false); break;
            }
        }
        foreach (var s in requests)
        {
            var r = s.Header;
            if (s.Reply is { Error: NbdError.None } reply && r.Command == NbdCommand.Read && r.Length > 0)
            {
                Assert.That(reply.Data, Is.Not.Null.And.Length.EqualTo((int)r.Length), $"{r}: data");
                if (reply.Covered != null) Assert.That(reply.Covered, Is.All.True, $"{r}: every byte sent");
                for (int k = 0; k < r.Length / 512; k++)
                    Assert.That(model.MayRead((int)(r.Offset / 512) + k, reply.Data.AsSpan(k * 512, 512)), Is.True, $"{r}: sector {k} read");
            }
            if (s.Reply is { Error: NbdError.None, Extents: { } extents })
            {
                Assert.That(extents, Is.Not.Empty);
                if ((r.Flags & NbdCommandFlags.RequestOne) != 0) Assert.That(extents, Has.Length.EqualTo(1));
                ulong total = 0;
                foreach (var e in extents)
                {
                    Assert.That(e.Length, Is.GreaterThan(0u), $"{r}: empty extent");
                    total += e.Length;
                }
                Assert.That(total, Is.LessThanOrEqualTo((ulong)r.Length), $"{r}: extents beyond the request");
            }
        }
        foreach (var (offset, data) in goodReads)
            for (int k = 0; k < data.Length / 512; k++)
                Assert.That(model.MayRead((int)(offset / 512) + k, data.AsSpan(k * 512, 512)), Is.True, $"well-behaved read at {offset}, sector {k}");

        // Nothing stuck, and the image holds exactly what the answers allow.
        AssertServerIdle(h, connections: 1);
        var file = File.ReadAllBytes(h.ImagePath);
        if (readOnly) Assert.That(file.AsSpan().SequenceEqual(pristine), Is.True, "a read-only export's image changed");
        for (uint off = 0; off < TxImageBytes; off += 256 << 10)
        {
            var back = good.Read(off, 256 << 10);
            if (!vhd)
                Assert.That(back.AsSpan().SequenceEqual(file.AsSpan((int)off, 256 << 10)), Is.True, "the server reads what the file holds");
            for (int k = 0; k < back.Length / 512; k++)
                Assert.That(model.MayEndWith((int)(off / 512) + k, back.AsSpan(k * 512, 512)), Is.True, $"sector {off / 512 + (uint)k} afterwards");
        }
        good.Disconnect();
        Assert.That(good.IsClosedByServer(TimeoutMs), Is.True);
        h.AssertLoopHealthy();
    }
}
