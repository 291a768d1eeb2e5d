using BlkTapCtrl.Worker.Interop;
using BlkTapCtrl.Worker.IO;
using BlkTapCtrl.Worker.Server;
using BlkTapCtrl.Worker.Scheduling;
using BlkTapCtrl.Worker.Tests.Support;
using BlkTapCtrl.Worker.Vbd;

namespace BlkTapCtrl.Worker.Tests.Vbd;

/// <summary>How requests are cut, issued and answered: CA-27732, CA-36385, CA-27472 rows of §5.</summary>
[TestFixture]
public class RequestPathTests
{
    [Test]
    public void CA27732_eleven_contiguous_pages_become_one_88_sector_treq()
    {
        using var h = new EngineHarness();
        var r = h.Vbd.TryRentRequest(h.Frontend)!;
        r.Operation = VbdOperation.Read;
        r.Sector = 200;
        for (int i = 0; i < 11; i++) r.AddSegment(h.Memory.Pointer + i * 4096, 8);
        h.Vbd.Submit(r);
        h.Vbd.ProcessSubmitted();
        Assert.That(h.Driver.Seen, Is.EqualTo(new[] { (VbdOperation.Read, 200UL, 88) }));
        h.Iterate();
        for (int i = 0; i < 88; i++)
            Assert.That(BitConverter.ToInt32(h.Memory.Span[(i * 512)..]), Is.EqualTo(200 + i));
    }

    [Test]
    public void CA27732_a_discontinuity_in_memory_splits_the_treq()
    {
        using var h = new EngineHarness();
        var r = h.Vbd.TryRentRequest(h.Frontend)!;
        r.Operation = VbdOperation.Read;
        r.Sector = 0;
        r.AddSegment(h.Memory.Pointer, 8);
        r.AddSegment(h.Memory.Pointer + 4096, 8);
        r.AddSegment(h.Memory.Pointer + 3 * 4096, 8); // gap of one page
        h.Vbd.Submit(r);
        h.Vbd.ProcessSubmitted();
        Assert.That(h.Driver.Seen, Is.EqualTo(new[] { (VbdOperation.Read, 0UL, 16), (VbdOperation.Read, 16UL, 8) }));
        h.Iterate();
        Assert.That(BitConverter.ToInt32(h.Memory.Span[(3 * 4096)..]), Is.EqualTo(16));
    }

    [TestCase("2.6.21", false)]
    [TestCase("2.6.22", true)]
    [TestCase("2.6.32.1", true)]
    [TestCase("2.6.18-xen", false)]
    [TestCase("6.18.44-fc-v782", true)]
    [TestCase("3.0", false)]
    [TestCase("", false)]
    [TestCase("linux", false)]
    public void CA36385_prefer_eventfd_kernel_release_parser(string release, bool eventfd) =>
        Assert.That(KernelRelease.PrefersEventfd(release), Is.EqualTo(eventfd));

    [TestCase(IoBackendKind.Synchronous)]
    [TestCase(IoBackendKind.LinuxAio)]
    [TestCase(IoBackendKind.IoUring)]
    public void CA36385_tio_backends_are_selectable_per_VBD(IoBackendKind kind)
    {
        using var h = new EngineHarness(backend: kind);
        if (kind == IoBackendKind.LinuxAio && h.Vbd.Io.Name == "rwio")
        {
            // The documented fallback: io_setup refused (aio-max-nr used up by parallel tests on this machine).
            Assert.That(h.LogLines, Has.Some.Contains("native AIO unavailable"));
            Assert.Inconclusive("native AIO contexts exhausted on this machine: " + string.Join(" | ", h.LogLines));
        }
        Assert.That(h.Vbd.Io.Name, Is.EqualTo(kind switch { IoBackendKind.Synchronous => "rwio", IoBackendKind.IoUring => "uring", _ => "lio" }));
        h.SubmitAndProcess(VbdOperation.Read, 33, 8);
        h.IterateUntil(() => h.Frontend.Answers.Count == 1); // by iterations, not time: a loaded machine may need many loop passes before the completion lands
        Assert.That(h.Frontend.Answers[0].Error, Is.Zero);
        Assert.That(BitConverter.ToInt32(h.Memory.Span), Is.EqualTo(33));
    }

    [Test]
    public void CA36385_a_synchronous_backend_request_is_answered_in_the_same_iteration_without_an_extra_kick()
    {
        using var h = new EngineHarness(backend: IoBackendKind.Synchronous);
        // The frontend runs as a loop event, like a ring fd: it submits during wait_for_events.
        int id = 0;
        id = h.Server.Loop.Register(EventMode.Timeout, -1, 0, (_, _, _) =>
        {
            h.SubmitAndProcess(VbdOperation.Read, 5, 8);
            h.Server.Loop.Unregister(id);
        });
        h.Iterate();
        Assert.That(h.Frontend.Answers, Has.Count.EqualTo(1), "answered in the iteration that received it");
        Assert.That(h.Frontend.Answers[0].Iteration, Is.EqualTo(1));
        Assert.That(h.Frontend.Kicks, Is.EqualTo(1));
    }

    [Test]
    public void CA27472_kick_counts_three_ring_events_two_pushes()
    {
        using var h = new EngineHarness();
        h.SubmitAndProcess(VbdOperation.Read, 0, 8);
        h.SubmitAndProcess(VbdOperation.Read, 8, 8, 4096);
        h.Iterate();
        h.SubmitAndProcess(VbdOperation.Read, 16, 8, 8192);
        h.Iterate();
        Assert.That((h.Vbd.Counters.KicksIn, h.Vbd.Counters.KicksOut, h.Vbd.Counters.Kicked), Is.EqualTo((3L, 2L, 3L)));
        Assert.That(h.Vbd.DebugSummary(), Does.Contain("kicks in: 0x3, out: 0x2"));
        Assert.That(h.Vbd.Close(), Is.Zero);
        Assert.That(h.LogLines.Last(l => l.StartsWith("tapdisk_vbd_close", StringComparison.Ordinal)),
            Does.Contain("received 0x3 returned 0x3").And.Contain("kicks in: 0x3, out: 0x2"), "shutdown log has the counters");
    }

    [Test]
    public void CA27472_failure_info_logs_errno_of_the_request_when_returning_an_error()
    {
        using var h = new EngineHarness();
        h.Driver.SynchronousError = _ => -Errno.ENOSPC;
        h.SubmitAndProcess(VbdOperation.Write, 0, 8);
        h.Iterate();
        Assert.That(h.LogLines, Has.Some.Match(@"^ERROR: errno 28 at tapdisk_vbd_make_response: returning BLKIF_RSP -1"));
    }

    [Test]
    public void Requests_beyond_the_pool_wait_for_a_free_slot_and_flush_reaches_the_disk()
    {
        using var h = new EngineHarness();
        var rented = new List<VbdRequest>();
        while (h.Vbd.TryRentRequest(h.Frontend) is { } r) rented.Add(r);
        Assert.That(rented, Has.Count.EqualTo(h.Vbd.RequestSlots), "the pool is bounded: the next rent is refused");
        foreach (var r in rented) h.Vbd.ReturnUnsubmitted(r);
        Assert.That(h.Vbd.FreeRequestSlots, Is.EqualTo(h.Vbd.RequestSlots));
        h.Memory.Span[..512].Fill(0xAB);
        ulong w = h.SubmitAndProcess(VbdOperation.Write, 7, 1);
        ulong f = h.SubmitAndProcess(VbdOperation.Flush, 0, 0);
        h.Iterate();
        Assert.That((h.Frontend.ErrorOf(w), h.Frontend.ErrorOf(f)), Is.EqualTo(((int?)0, (int?)0)));
        using var file = File.OpenRead(h.ImagePath);
        file.Position = 7 * 512;
        Assert.That(file.ReadByte(), Is.EqualTo(0xAB));
    }
}
