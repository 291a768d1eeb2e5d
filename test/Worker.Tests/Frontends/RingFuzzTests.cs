using BlkTapCtrl.Protocol.Blkif;
using BlkTapCtrl.Testing;
using BlkTapCtrl.Protocol.Blkif.SharedMemory;
using BlkTapCtrl.Worker.Vbd;
using CsCheck;
using static BlkTapCtrl.Worker.Tests.Frontends.RingFuzzCase;

namespace BlkTapCtrl.Worker.Tests.Frontends;

/// <summary>
/// A hostile frontend on the shared-memory blkif ring (reference §3.6), served by the real worker:
/// every published request is answered with its own id and op and OK exactly when it is valid, the
/// image changes only where valid, acknowledged writes went (an in-memory model, checked after every
/// push), a producer running more than a ring ahead (or backwards) is cut off with a log line, and a
/// well-behaved frontend attaching afterwards reads the model back.
/// </summary>
public class RingFuzzTests
{
    private const int DiskBytes = DiskSectors * BlkifLayout.SectorSize;
    private const int AnswerTimeoutMs = 5000;

    [Test]
    public void A_hostile_frontend_gets_answers_and_cannot_touch_data_it_was_refused() =>
        GenBatches.Sample(Run, iter: 40, threads: 1);

    private static void Run(Batch[] batches)
    {
        using var h = new NbdFrontendHarness(imageBytes: DiskBytes, ring: true);
        var model = new byte[DiskBytes];
        var c = new SharedMemoryRingClient(h.RingSocketPath);
        try
        {
            uint prod = 0;
            for (int b = 0; b < batches.Length; b++)
            {
                var batch = batches[b];
                if (batch.Jump is { } jump)
                {
                    int cutOffs = CountLines(h, "cut off");
                    c.Ring.Shared.RequestProducer = prod + jump;
                    c.Kick();
                    Assert.That(() => h.OnLoop(() => h.Ring!.IsBroken), Is.True.After(AnswerTimeoutMs, 10),
                        $"batch {b}: req_prod moved by {jump} from {prod} was not cut off");
                    Assert.That(CountLines(h, "cut off"), Is.GreaterThan(cutOffs), "the cut-off is logged");
                    AssertFileIs(h, model, $"batch {b}, after the cut-off");
                    c = Reattach(h, c);
                    prod = 0;
                    continue;
                }
                if (Push(h, c, b, batch, prod, model)) return; // the control byte closed the VBD
                prod += (uint)(batch.Requests.Length + batch.Stale);
                if (batch.Control == (byte)BlkifRingControl.Pause)
                {
                    // The pause took hold once the batch was answered. The frontend either resumes it on the
                    // ring or walks away; either way the next requests must be served.
                    Assert.That(h.OnLoop(() => h.Vbd.Flags & VbdFlags.Paused), Is.EqualTo(VbdFlags.Paused), $"batch {b}: the ring paused the VBD");
                    if (b % 2 == 0)
                    {
                        c.SendControl(BlkifRingControl.Resume);
                        Assert.That(() => h.OnLoop(() => h.Vbd.Flags & VbdFlags.Paused), Is.EqualTo((VbdFlags)0).After(AnswerTimeoutMs, 10),
                            $"batch {b}: resume on the ring");
                    }
                    else
                    {
                        c = Reattach(h, c);
                        prod = 0;
                    }
                }
            }
            c = Reattach(h, c);
            ReadBack(c, model);
            h.AssertLoopHealthy();
        }
        finally
        {
            c.Dispose();
        }
    }

    /// <summary>One push of a batch and every check on its answers. True when it closed the VBD.</summary>
    private static bool Push(NbdFrontendHarness h, SharedMemoryRingClient c, int b, Batch batch, uint prod, byte[] model)
    {
        var shared = c.Ring.Shared;
        for (int i = 0; i < batch.Requests.Length; i++)
            batch.Requests[i].Encode().CopyTo(shared.Slot(prod + (uint)i));
        int total = batch.Requests.Length + batch.Stale;
        var parsed = new RingFuzzOracle[total];
        for (int i = 0; i < total; i++)
            parsed[i] = RingFuzzOracle.Parse(shared.Slot(prod + (uint)i), DiskSectors);

        // A valid read and a valid write on the same slot race on its data pages (the written data would
        // be undefined): spoil such reads' op byte so they must be refused instead.
        var writeIds = parsed.Where(p => p.ValidWrite).Select(p => p.Id).ToHashSet();
        for (int i = 0; i < total; i++)
            if (parsed[i].ValidRead && writeIds.Contains(parsed[i].Id))
            {
                shared.Slot(prod + (uint)i)[0] = 0xEE;
                parsed[i] = RingFuzzOracle.Parse(shared.Slot(prod + (uint)i), DiskSectors);
            }

        // Fresh data in the pages of every slot a valid write uses, and what each written sector may become.
        var rng = new Random(b * 97 + total);
        foreach (var id in writeIds)
            for (int s = 0; s < BlkifLayout.MaxSegments; s++)
                rng.NextBytes(c.DataPage((int)id, s));
        var candidates = new Dictionary<long, List<byte[]>>();
        foreach (var p in parsed.Where(p => p.ValidWrite))
            foreach (var (sector, page, offset) in p.SectorMap())
            {
                if (!candidates.TryGetValue(sector, out var list)) candidates[sector] = list = new();
                list.Add(c.DataPage((int)p.Id, page).Slice(offset, BlkifLayout.SectorSize).ToArray());
            }

        if (batch.Control is { } control) shared.Control = (BlkifRingControl)control;
        Interlocked.MemoryBarrier();
        shared.RequestProducer = prod + (uint)total;
        c.Kick();

        var answers = Collect(h, c, total, $"batch {b}");
        var expected = parsed.Select(p => (p.Id, p.Op, p.Valid ? BlkifStatus.Okay : BlkifStatus.Error)).Order().ToArray();
        var got = answers.Select(r => (r.Id, (byte)r.Operation, r.Status)).Order().ToArray();
        Assert.That(got, Is.EqualTo(expected), $"batch {b}: each request answered once, with its id and op, OK exactly when valid");

        // Reads that shared neither their pages nor their sectors with another request of the batch saw the model.
        var written = candidates.Keys.ToHashSet();
        foreach (var p in parsed.Where(p => p.ValidRead))
        {
            if (parsed.Count(q => q.Valid && q.Id == p.Id) > 1) continue;
            foreach (var (sector, page, offset) in p.SectorMap())
                if (!written.Contains(sector))
                    AssertBytes.Equal(model.AsSpan((int)sector * BlkifLayout.SectorSize, BlkifLayout.SectorSize),
                        c.DataPage((int)p.Id, page).Slice(offset, BlkifLayout.SectorSize), $"batch {b}: read of slot {p.Id} at sector {sector}");
        }

        AssertFileIs(h, model, $"batch {b}", candidates);
        h.AssertLoopHealthy();

        if (batch.Control == (byte)BlkifRingControl.Close)
        {
            Assert.That(() => h.LoopExited, Is.True.After(AnswerTimeoutMs, 10), "close on the ring closes the VBD");
            return true;
        }
        return false;
    }

    /// <summary>
    /// The image equals the model, except that a sector a valid write was acknowledged for holds the data
    /// of one such write; the model then takes the file's contents.
    /// </summary>
    private static void AssertFileIs(NbdFrontendHarness h, byte[] model, string what, Dictionary<long, List<byte[]>>? candidates = null)
    {
        var file = File.ReadAllBytes(h.ImagePath);
        Assert.That(file, Has.Length.EqualTo(DiskBytes), $"{what}: nothing is written past the disk's end");
        for (int s = 0; s < DiskSectors; s++)
        {
            var actual = file.AsSpan(s * BlkifLayout.SectorSize, BlkifLayout.SectorSize);
            var before = model.AsSpan(s * BlkifLayout.SectorSize, BlkifLayout.SectorSize);
            if (candidates != null && candidates.TryGetValue(s, out var options))
            {
                bool acknowledged = false;
                foreach (var o in options) acknowledged |= actual.SequenceEqual(o);
                Assert.That(acknowledged, Is.True, $"{what}: sector {s} holds none of the data acknowledged for it");
            }
            else
                AssertBytes.Equal(before, actual, $"{what}: sector {s}, where no valid write went,");
        }
        file.CopyTo(model, 0);
    }

    private static List<BlkifResponse> Collect(NbdFrontendHarness h, SharedMemoryRingClient c, int count, string what)
    {
        var answers = new List<BlkifResponse>();
        Span<BlkifResponse> buffer = stackalloc BlkifResponse[BlkifLayout.RingSlots];
        long deadline = Environment.TickCount64 + AnswerTimeoutMs;
        while (answers.Count < count)
        {
            long left = deadline - Environment.TickCount64;
            int n = left > 0 ? c.Collect(buffer[..(count - answers.Count)], (int)left) : 0;
            if (n == 0) h.AssertLoopHealthy();
            if (n == 0) Assert.Fail($"{what}: only {answers.Count} of {count} requests answered within {AnswerTimeoutMs} ms: the ring is stuck");
            for (int i = 0; i < n; i++) answers.Add(buffer[i]);
        }
        return answers;
    }

    /// <summary>The frontend leaves; a new one attaches (refused while the last one's requests still run) to a fresh ring.</summary>
    private static SharedMemoryRingClient Reattach(NbdFrontendHarness h, SharedMemoryRingClient old)
    {
        old.Dispose();
        Assert.That(() => h.OnLoop(() => h.RingDevice!.HasFrontend), Is.False.After(AnswerTimeoutMs, 10), "the old frontend is gone");
        long deadline = Environment.TickCount64 + AnswerTimeoutMs;
        while (true)
        {
            try { return new SharedMemoryRingClient(h.RingSocketPath); }
            catch (IOException) when (Environment.TickCount64 < deadline) { Thread.Sleep(10); }
        }
    }

    /// <summary>A well-behaved frontend reads the whole disk: it holds exactly the model.</summary>
    private static void ReadBack(SharedMemoryRingClient c, byte[] model)
    {
        const int chunk = BlkifLayout.MaxSegments * BlkifLayout.SectorsPerPage;
        for (int sector = 0; sector < DiskSectors; sector += chunk)
        {
            int n = Math.Min(chunk, DiskSectors - sector);
            Assert.That(c.Submit(SharedMemoryRingClient.MakeRequest(BlkifOperation.Read, 5, (ulong)sector, n), AnswerTimeoutMs),
                Is.EqualTo(BlkifStatus.Okay), $"read back at sector {sector}");
            for (int i = 0; i * BlkifLayout.SectorsPerPage < n; i++)
            {
                int bytes = Math.Min(BlkifLayout.PageSize, (n - i * BlkifLayout.SectorsPerPage) * BlkifLayout.SectorSize);
                AssertBytes.Equal(model.AsSpan((sector + i * BlkifLayout.SectorsPerPage) * BlkifLayout.SectorSize, bytes),
                    c.DataPage(5, i)[..bytes], $"read back of page {i} at sector {sector}");
            }
        }
    }

    private static int CountLines(NbdFrontendHarness h, string text)
    {
        lock (h.LogLines) return h.LogLines.Count(l => l.Contains(text));
    }
}
