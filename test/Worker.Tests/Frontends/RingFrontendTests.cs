using BlkTapCtrl.Testing;
using BlkTapCtrl.Protocol.Blkif;
using BlkTapCtrl.Protocol.Blkif.SharedMemory;
using BlkTapCtrl.Worker.Frontends;
using BlkTapCtrl.Worker.Vbd;

namespace BlkTapCtrl.Worker.Tests.Frontends;

/// <summary>Requests put on the shared-memory blkif ring the way blkfront does, served by the real VBD.</summary>
public class RingFrontendTests
{
    [Test]
    public void Hello_describes_the_disk_and_the_mapping()
    {
        using var h = new NbdFrontendHarness(imageBytes: 4 << 20, ring: true);
        using var c = new SharedMemoryRingClient(h.RingSocketPath);
        Assert.That(c.Sectors, Is.EqualTo((4UL << 20) / 512));
        Assert.That(c.Info.ReadOnly, Is.False);
        Assert.That(c.Info.MappingPages, Is.EqualTo(353));
        Assert.That(h.RingDevice!.ShmPath, Does.StartWith("/dev/shm/"));
        Assert.That(File.Exists(h.RingDevice.ShmPath), Is.True);
    }

    [Test]
    public void Eleven_segment_write_reaches_the_file_and_reads_back()
    {
        using var h = new NbdFrontendHarness(imageBytes: 4 << 20, ring: true);
        using var c = new SharedMemoryRingClient(h.RingSocketPath);
        var data = TestBytes.Pattern(11 * 4096, 1);
        for (int i = 0; i < 11; i++) data.AsSpan(i * 4096, 4096).CopyTo(c.DataPage(3, i));
        Assert.That(c.Submit(SharedMemoryRingClient.MakeRequest(BlkifOperation.Write, 3, 16, 88)), Is.EqualTo(BlkifStatus.Okay));
        Assert.That(TestBytes.FileRange(h.ImagePath, 16 * 512, data.Length), Is.EqualTo(data));
        for (int i = 0; i < 11; i++) c.DataPage(7, i).Clear();
        Assert.That(c.Submit(SharedMemoryRingClient.MakeRequest(BlkifOperation.Read, 7, 16, 88)), Is.EqualTo(BlkifStatus.Okay));
        for (int i = 0; i < 11; i++) Assert.That(c.DataPage(7, i).ToArray(), Is.EqualTo(data.AsSpan(i * 4096, 4096).ToArray()));
    }

    [Test]
    public void Sector_ranges_inside_pages_use_first_and_last_sect()
    {
        using var h = new NbdFrontendHarness(imageBytes: 1 << 20, ring: true);
        using var c = new SharedMemoryRingClient(h.RingSocketPath);
        var r = new BlkifRequest { Operation = BlkifOperation.Write, SegmentCount = 2, Id = 0, Sector = 100 };
        r.Segments[0] = new BlkifSegment(0, 5, 7); // 3 sectors from byte 2560 of page 0
        r.Segments[1] = new BlkifSegment(1, 0, 1); // 2 sectors from page 1
        TestBytes.Pattern(1536, 2).CopyTo(c.DataPage(0, 0)[2560..]);
        TestBytes.Pattern(1024, 3).CopyTo(c.DataPage(0, 1));
        Assert.That(c.Submit(r), Is.EqualTo(BlkifStatus.Okay));
        Assert.That(TestBytes.FileRange(h.ImagePath, 100 * 512, 1536), Is.EqualTo(TestBytes.Pattern(1536, 2)));
        Assert.That(TestBytes.FileRange(h.ImagePath, 103 * 512, 1024), Is.EqualTo(TestBytes.Pattern(1024, 3)));
    }

    [Test]
    public void A_full_ring_of_32_requests_in_one_push_is_answered_with_few_kicks()
    {
        using var h = new NbdFrontendHarness(imageBytes: 8 << 20, ring: true);
        using var c = new SharedMemoryRingClient(h.RingSocketPath);
        for (int id = 0; id < 32; id++)
        {
            for (int s = 0; s < 2; s++) TestBytes.Pattern(4096, id * 10 + s).CopyTo(c.DataPage(id, s));
            c.Queue(SharedMemoryRingClient.MakeRequest(BlkifOperation.Write, id, (ulong)id * 16, 16));
        }
        c.Push();
        Assert.That(c.KicksSent, Is.EqualTo(1), "one push, one kick");
        var got = new HashSet<ulong>();
        Span<BlkifResponse> responses = stackalloc BlkifResponse[32];
        while (got.Count < 32)
        {
            int n = c.Collect(responses, 10_000);
            Assert.That(n, Is.GreaterThan(0), "responses stopped coming");
            for (int i = 0; i < n; i++)
            {
                Assert.That(responses[i].Status, Is.EqualTo(BlkifStatus.Okay));
                Assert.That(responses[i].Operation, Is.EqualTo(BlkifOperation.Write));
                Assert.That(got.Add(responses[i].Id), Is.True, $"id {responses[i].Id} answered twice");
            }
        }
        for (int id = 0; id < 32; id++)
            Assert.That(TestBytes.FileRange(h.ImagePath, id * 16 * 512L, 8192), Is.EqualTo(TestBytes.Pattern(4096, id * 10).Concat(TestBytes.Pattern(4096, id * 10 + 1)).ToArray()));
        Assert.That(c.Ring.FreeRequests, Is.EqualTo(32));
        Assert.That(h.OnLoop(() => h.Ring!.KicksOut), Is.LessThanOrEqualTo(h.OnLoop(() => h.Ring!.KicksIn) + 32));
    }

    [Test]
    public void Bad_requests_get_an_error_response_and_the_ring_goes_on()
    {
        using var h = new NbdFrontendHarness(imageBytes: 1 << 20, ring: true);
        using var c = new SharedMemoryRingClient(h.RingSocketPath);
        var bad = new List<BlkifRequest>();
        var r = SharedMemoryRingClient.MakeRequest(BlkifOperation.Read, 1, 0, 8); r.Operation = BlkifOperation.Discard; bad.Add(r);
        r = SharedMemoryRingClient.MakeRequest(BlkifOperation.Read, 2, 0, 8); r.SegmentCount = 0; bad.Add(r);
        r = SharedMemoryRingClient.MakeRequest(BlkifOperation.Read, 3, 0, 8); r.Segments[0] = new BlkifSegment(0, 0, 8); bad.Add(r);
        r = SharedMemoryRingClient.MakeRequest(BlkifOperation.Read, 4, 2047, 8); bad.Add(r); // past the 2048-sector end
        r = SharedMemoryRingClient.MakeRequest(BlkifOperation.Read, 5, 0, 8); r.Id = 40; bad.Add(r); // not a slot
        foreach (var b in bad)
            Assert.That(c.Submit(b), Is.EqualTo(BlkifStatus.Error), $"request {b.Id}");
        Assert.That(c.Submit(SharedMemoryRingClient.MakeRequest(BlkifOperation.Read, 6, 0, 8)), Is.EqualTo(BlkifStatus.Okay));
        Assert.That(h.OnLoop(() => h.Ring!.RejectedRequests), Is.EqualTo(5));
    }

    [Test]
    public void Read_only_vbd_refuses_ring_writes()
    {
        using var h = new NbdFrontendHarness(imageBytes: 1 << 20, ring: true, readOnly: true);
        using var c = new SharedMemoryRingClient(h.RingSocketPath);
        Assert.That(c.Info.ReadOnly, Is.True);
        c.DataPage(0, 0).Fill(0xEE);
        Assert.That(c.Submit(SharedMemoryRingClient.MakeRequest(BlkifOperation.Write, 0, 0, 8)), Is.EqualTo(BlkifStatus.Error));
        Assert.That(TestBytes.FileRange(h.ImagePath, 0, 4096), Is.All.EqualTo(0));
    }

    [Test]
    public void A_frontend_overflowing_the_ring_is_cut_off()
    {
        using var h = new NbdFrontendHarness(imageBytes: 1 << 20, ring: true);
        using var c = new SharedMemoryRingClient(h.RingSocketPath);
        c.Ring.Shared.RequestProducer = 40; // claims 40 requests in a 32-slot ring
        c.Kick();
        Assert.That(() => h.OnLoop(() => h.Ring!.IsBroken), Is.True.After(5000, 50));
        Assert.That(h.LogLines, Has.Some.Contains("req_prod 40"));
    }

    [Test]
    public void Second_frontend_waits_for_the_first_to_leave_then_gets_a_fresh_ring()
    {
        using var h = new NbdFrontendHarness(imageBytes: 1 << 20, ring: true);
        var first = new SharedMemoryRingClient(h.RingSocketPath);
        Assert.That(first.Submit(SharedMemoryRingClient.MakeRequest(BlkifOperation.Read, 0, 0, 8)), Is.EqualTo(BlkifStatus.Okay));
        Assert.Throws<IOException>(() => new SharedMemoryRingClient(h.RingSocketPath).Dispose());
        first.Dispose();
        Assert.That(() => h.OnLoop(() => h.RingDevice!.HasFrontend), Is.False.After(5000, 50));
        using var second = new SharedMemoryRingClient(h.RingSocketPath);
        Assert.That(second.Ring.Shared.RequestProducer, Is.Zero);
        Assert.That(second.Submit(SharedMemoryRingClient.MakeRequest(BlkifOperation.Read, 0, 8, 8)), Is.EqualTo(BlkifStatus.Okay));
    }

    [Test]
    public void Close_control_byte_closes_the_vbd()
    {
        using var h = new NbdFrontendHarness(imageBytes: 1 << 20, ring: true);
        using var c = new SharedMemoryRingClient(h.RingSocketPath);
        c.SendControl(BlkifRingControl.Close);
        // the last VBD closing ends the server's run, so the loop thread stops
        Assert.That(() => h.LoopExited, Is.True.After(5000, 50));
        Assert.That(h.Server.Vbds, Is.Empty);
        Assert.That(h.LogLines, Has.Some.Contains("close requested on the ring"));
    }

    /// <summary>
    /// Found by RingFuzzTests: the pause byte paused the VBD for good (resume was "ignored"), so every later
    /// request on the ring, from this frontend or the next, waited forever. Resume on the ring now reopens
    /// the image (tapdisk_vbd_resume_ring), and a frontend leaving its pause behind does not leave the disk stuck.
    /// </summary>
    [Test]
    public void A_ring_pause_ends_with_a_ring_resume_or_with_the_next_frontend()
    {
        using var h = new NbdFrontendHarness(imageBytes: 1 << 20, ring: true);
        var first = new SharedMemoryRingClient(h.RingSocketPath);
        try
        {
            TestBytes.Pattern(4096, 9).CopyTo(first.DataPage(0, 0));
            Assert.That(first.Submit(SharedMemoryRingClient.MakeRequest(BlkifOperation.Write, 0, 8, 8)), Is.EqualTo(BlkifStatus.Okay));
            first.SendControl(BlkifRingControl.Pause);
            Assert.That(() => h.OnLoop(() => h.Vbd.Flags & VbdFlags.Paused), Is.EqualTo(VbdFlags.Paused).After(5000, 10));
            first.SendControl(BlkifRingControl.Resume);
            Assert.That(() => h.OnLoop(() => h.Vbd.Flags & VbdFlags.Paused), Is.EqualTo((VbdFlags)0).After(5000, 10), "resume on the ring");
            Assert.That(first.Submit(SharedMemoryRingClient.MakeRequest(BlkifOperation.Read, 1, 8, 8), 5000), Is.EqualTo(BlkifStatus.Okay));
            Assert.That(first.DataPage(1, 0).ToArray(), Is.EqualTo(TestBytes.Pattern(4096, 9)));

            first.SendControl(BlkifRingControl.Pause);
            Assert.That(() => h.OnLoop(() => h.Vbd.Flags & VbdFlags.Paused), Is.EqualTo(VbdFlags.Paused).After(5000, 10));
        }
        finally { first.Dispose(); }
        Assert.That(() => h.OnLoop(() => h.RingDevice!.HasFrontend), Is.False.After(5000, 50));
        using var second = new SharedMemoryRingClient(h.RingSocketPath);
        Assert.That(second.Submit(SharedMemoryRingClient.MakeRequest(BlkifOperation.Read, 2, 8, 8), 5000), Is.EqualTo(BlkifStatus.Okay),
            "the next frontend is served, not left behind the last one's pause");
        Assert.That(second.DataPage(2, 0).ToArray(), Is.EqualTo(TestBytes.Pattern(4096, 9)));
        Assert.That(h.LogLines, Has.Some.Contains("a new frontend attaches: resumed"));
    }

    [Test]
    public void Kernel_device_that_is_missing_is_a_clear_error()
    {
        using var dir = new Testing.TempDir("kdev");
        int err = KernelBlktapRingDevice.Open(7, out var device, out var error, dir.Path);
        Assert.That(err, Is.EqualTo(-2));
        Assert.That(device, Is.Null);
        Assert.That(error, Does.Contain("blktap7").And.Contain("ENOENT"));
    }
}
