using System.Runtime.InteropServices;
using BlkTapCtrl.Protocol.Blkif;

namespace BlkTapCtrl.Protocol.Tests.Blkif;

public unsafe class BlkifRingTests
{
    private byte* _page;
    private BlkifSharedRing _shared = null!;

    [SetUp]
    public void SetUp()
    {
        _page = (byte*)NativeMemory.AlignedAlloc(4096, 4096);
        new Span<byte>(_page, 4096).Fill(0xA5);
        _shared = new BlkifSharedRing(_page);
        _shared.Initialize();
    }

    [TearDown]
    public void TearDown() => NativeMemory.AlignedFree(_page);

    private static BlkifRequest Read(ulong id, ulong sector)
    {
        var r = new BlkifRequest { Operation = BlkifOperation.Read, SegmentCount = 1, Id = id, Sector = sector };
        r.Segments[0] = new BlkifSegment(0, 0, 7);
        return r;
    }

    [Test]
    public void Initialize_zeroes_the_page_and_arms_both_events_at_one()
    {
        Assert.That((_shared.RequestProducer, _shared.RequestEvent, _shared.ResponseProducer, _shared.ResponseEvent), Is.EqualTo((0u, 1u, 0u, 1u)));
        Assert.That(_shared.Control, Is.EqualTo(BlkifRingControl.None));
        Assert.That(_page[4095], Is.EqualTo(0));
    }

    [Test]
    public void First_push_notifies_then_a_busy_backend_is_not_kicked_until_it_rearms()
    {
        var front = new BlkifFrontRing(_shared);
        var back = new BlkifBackRing(_shared);
        front.QueueRequest(Read(1, 0));
        Assert.That(front.PushRequests(), Is.True, "req_event 1 lies in (0, 1]");

        Assert.That(back.TryTakeRequest(out var got), Is.True);
        Assert.That(got.Id, Is.EqualTo(1));
        // The backend has not re-armed (req_event still 1): further pushes need no kick.
        front.QueueRequest(Read(2, 8));
        Assert.That(front.PushRequests(), Is.False);
        Assert.That(back.TryTakeRequest(out got), Is.True);
        Assert.That(back.FinalCheckForRequests(), Is.False);
        Assert.That(_shared.RequestEvent, Is.EqualTo(3), "req_event = req_cons + 1");
        front.QueueRequest(Read(3, 16));
        front.QueueRequest(Read(4, 24));
        Assert.That(front.PushRequests(), Is.True);
    }

    [Test]
    public void Responses_flow_back_with_the_same_threshold_rule()
    {
        var front = new BlkifFrontRing(_shared);
        var back = new BlkifBackRing(_shared);
        for (ulong i = 0; i < 3; i++) front.QueueRequest(Read(i, i * 8));
        front.PushRequests();
        while (back.TryTakeRequest(out var r))
            back.QueueResponse(new BlkifResponse(r.Id, r.Operation, BlkifStatus.Okay));
        Assert.That(back.PushResponses(), Is.True);
        Assert.That(front.UnconsumedResponses, Is.EqualTo(3));
        var ids = new List<ulong>();
        while (front.TryTakeResponse(out var rsp)) ids.Add(rsp.Id);
        Assert.That(ids, Is.EqualTo(new ulong[] { 0, 1, 2 }));
        Assert.That(front.FinalCheckForResponses(), Is.False);
        Assert.That(_shared.ResponseEvent, Is.EqualTo(4));
        Assert.That(front.FreeRequests, Is.EqualTo(32));
    }

    [Test]
    public void A_full_ring_refuses_a_33rd_request()
    {
        var front = new BlkifFrontRing(_shared);
        for (ulong i = 0; i < 32; i++) front.QueueRequest(Read(i, 0));
        Assert.That(front.FreeRequests, Is.Zero);
        Assert.Throws<InvalidOperationException>(() => front.QueueRequest(Read(99, 0)));
    }

    [Test]
    public void A_frontend_that_publishes_more_than_the_ring_holds_is_reported_not_trusted()
    {
        var back = new BlkifBackRing(_shared);
        _shared.RequestProducer = 33;
        var ex = Assert.Throws<BlkifFormatException>(() => back.TryTakeRequest(out _));
        Assert.That(ex!.Message, Does.Contain("req_prod 33"));
    }

    [Test]
    public void Indexes_wrap_around_two_to_the_32()
    {
        uint start = uint.MaxValue - 2;
        _shared.RequestProducer = start; _shared.ResponseProducer = start;
        _shared.RequestEvent = start + 1; _shared.ResponseEvent = start + 1;
        var front = new BlkifFrontRing(_shared, start);
        var back = new BlkifBackRing(_shared, start);
        for (ulong round = 0; round < 3; round++)
        {
            for (ulong i = 0; i < 5; i++) front.QueueRequest(Read(round * 10 + i, i));
            Assert.That(front.PushRequests(), Is.True, $"round {round}");
            int n = 0;
            while (back.TryTakeRequest(out var r)) { back.QueueResponse(new BlkifResponse(r.Id, r.Operation, 0)); n++; }
            Assert.That(n, Is.EqualTo(5));
            Assert.That(back.FinalCheckForRequests(), Is.False);
            Assert.That(back.PushResponses(), Is.True);
            int m = 0;
            while (front.TryTakeResponse(out _)) m++;
            Assert.That(m, Is.EqualTo(5));
            Assert.That(front.FinalCheckForResponses(), Is.False);
        }
        Assert.That(_shared.RequestProducer, Is.EqualTo(unchecked(start + 15)));
    }
}
