using System.Runtime.CompilerServices;

namespace BlkTapCtrl.Protocol.Blkif;

/// <summary>
/// The shared page of a blkif ring as both ends see it (Xen ring.h semantics): four free-running 32-bit
/// indexes that wrap on overflow, entries at 64, the blktap2 control byte at 16. Reads of the peer's
/// producer index are acquire loads (ring.h's rmb after reading prod), writes of our producer index are
/// release stores (wmb before publishing), and the event-threshold checks use a full fence (mb) between
/// publishing and re-reading the peer's event index, as ring.h demands.
/// The memory is owned elsewhere (an mmap of the device or shared file); this type only interprets it.
/// </summary>
public sealed unsafe class BlkifSharedRing
{
    private readonly byte* _page;

    public BlkifSharedRing(byte* page)
    {
        if (page == null)
            throw new ArgumentNullException(nameof(page));
        _page = page;
    }

    public byte* Page => _page;

    private ref uint Index(int offset) => ref Unsafe.AsRef<uint>(_page + offset);

    public uint RequestProducer
    {
        get => Volatile.Read(ref Index(BlkifLayout.RequestProducerOffset));
        set => Volatile.Write(ref Index(BlkifLayout.RequestProducerOffset), value);
    }
    public uint RequestEvent
    {
        get => Volatile.Read(ref Index(BlkifLayout.RequestEventOffset));
        set => Volatile.Write(ref Index(BlkifLayout.RequestEventOffset), value);
    }
    public uint ResponseProducer
    {
        get => Volatile.Read(ref Index(BlkifLayout.ResponseProducerOffset));
        set => Volatile.Write(ref Index(BlkifLayout.ResponseProducerOffset), value);
    }
    public uint ResponseEvent
    {
        get => Volatile.Read(ref Index(BlkifLayout.ResponseEventOffset));
        set => Volatile.Write(ref Index(BlkifLayout.ResponseEventOffset), value);
    }

    public BlkifRingControl Control
    {
        get => (BlkifRingControl)Volatile.Read(ref _page[BlkifLayout.ControlByteOffset]);
        set => Volatile.Write(ref _page[BlkifLayout.ControlByteOffset], (byte)value);
    }

    public Span<byte> Slot(uint index) => new(_page + BlkifLayout.SlotOffset(index), BlkifLayout.EntrySize);

    /// <summary>SHARED_RING_INIT: producers 0, event thresholds 1 (notify on the first entry), padding zeroed.</summary>
    public void Initialize()
    {
        new Span<byte>(_page, BlkifLayout.PageSize).Clear();
        RequestEvent = 1;
        ResponseEvent = 1;
        Interlocked.MemoryBarrier();
    }

    /// <summary>ring.h's notify rule: the peer asked to be woken when the index passes its event value.</summary>
    public static bool CrossedEvent(uint oldProducer, uint newProducer, uint eventIndex) =>
        unchecked(newProducer - eventIndex) < unchecked(newProducer - oldProducer);
}

/// <summary>
/// The frontend (blkfront) side: produces requests, consumes responses. Not thread-safe; one owner.
/// </summary>
/// <param name="startIndex">Where the indexes stand: 0 on a freshly initialized ring; the published producer
/// indexes when attaching to a ring that is already in use.</param>
public sealed class BlkifFrontRing(BlkifSharedRing shared, uint startIndex = 0)
{
    private uint _requestProducerPrivate = startIndex;
    private uint _responseConsumer = startIndex;

    public BlkifSharedRing Shared { get; } = shared;

    /// <summary>Slots not holding an outstanding request or unconsumed response.</summary>
    public int FreeRequests => BlkifLayout.RingSlots - (int)unchecked(_requestProducerPrivate - _responseConsumer);

    /// <summary>Writes a request into the next private slot; it is invisible to the backend until <see cref="PushRequests"/>.</summary>
    public void QueueRequest(in BlkifRequest request)
    {
        if (FreeRequests <= 0)
            throw new InvalidOperationException($"ring is full: {BlkifLayout.RingSlots} requests outstanding");
        request.WriteTo(Shared.Slot(_requestProducerPrivate));
        _requestProducerPrivate++;
    }

    /// <summary>
    /// RING_PUSH_REQUESTS_AND_CHECK_NOTIFY: publish the queued requests (release store), full fence, then
    /// true when the backend's req_event lies within the newly published range (it must be kicked).
    /// </summary>
    public bool PushRequests()
    {
        uint old = Shared.RequestProducer;
        uint now = _requestProducerPrivate;
        Shared.RequestProducer = now;
        Interlocked.MemoryBarrier();
        return BlkifSharedRing.CrossedEvent(old, now, Shared.RequestEvent);
    }

    public int UnconsumedResponses => (int)unchecked(Shared.ResponseProducer - _responseConsumer);

    /// <summary>Takes the next published response, if any (acquire on rsp_prod before reading the slot).</summary>
    public bool TryTakeResponse(out BlkifResponse response)
    {
        response = default;
        uint produced = Shared.ResponseProducer;
        if (produced == _responseConsumer)
            return false;
        if (unchecked(produced - _responseConsumer) > BlkifLayout.RingSlots)
            throw new BlkifFormatException($"rsp_prod {produced} is more than {BlkifLayout.RingSlots} ahead of rsp_cons {_responseConsumer}");
        response = BlkifResponse.Read(Shared.Slot(_responseConsumer));
        _responseConsumer++;
        return true;
    }

    /// <summary>
    /// RING_FINAL_CHECK_FOR_RESPONSES: when nothing is pending, ask to be notified at the next response
    /// (rsp_event = rsp_cons + 1), fence, and look again so a response racing the request is not missed.
    /// </summary>
    public bool FinalCheckForResponses()
    {
        if (UnconsumedResponses > 0)
            return true;
        Shared.ResponseEvent = _responseConsumer + 1;
        Interlocked.MemoryBarrier();
        return UnconsumedResponses > 0;
    }
}

/// <summary>
/// The backend (tapdisk) side: consumes requests, produces responses. Not thread-safe; one owner.
/// Never trusts the frontend's req_prod beyond one ring's worth of slots.
/// </summary>
/// <param name="startIndex">Where the indexes stand: 0 on a freshly initialized ring; the published response
/// producer when attaching to a ring that is already in use.</param>
public sealed class BlkifBackRing(BlkifSharedRing shared, uint startIndex = 0)
{
    private uint _requestConsumer = startIndex;
    private uint _responseProducerPrivate = startIndex;

    public BlkifSharedRing Shared { get; } = shared;

    public uint RequestConsumer => _requestConsumer;

    /// <summary>RING_HAS_UNCONSUMED_REQUESTS: min(published − consumed, free response space).</summary>
    public int UnconsumedRequests
    {
        get
        {
            uint requests = unchecked(Shared.RequestProducer - _requestConsumer);
            uint space = BlkifLayout.RingSlots - unchecked(_requestConsumer - _responseProducerPrivate);
            return (int)Math.Min(requests, space);
        }
    }

    /// <summary>
    /// Copies the next published request out of the ring (acquire on req_prod, so the slot's contents are
    /// visible). Throws <see cref="BlkifFormatException"/> when the frontend published more requests than
    /// the ring can hold (RING_REQUEST_PROD_OVERFLOW): that frontend is broken.
    /// </summary>
    public bool TryTakeRequest(out BlkifRequest request)
    {
        request = default;
        uint produced = Shared.RequestProducer;
        if (unchecked(produced - _responseProducerPrivate) > BlkifLayout.RingSlots)
            throw new BlkifFormatException(
                $"req_prod {produced} is more than {BlkifLayout.RingSlots} ahead of rsp_prod {_responseProducerPrivate}: frontend overflowed the ring");
        if (produced == _requestConsumer)
            return false;
        request = BlkifRequest.Read(Shared.Slot(_requestConsumer));
        _requestConsumer++;
        return true;
    }

    /// <summary>Writes a response into the next private response slot (reference §3.6: at rsp_prod_pvt).</summary>
    public void QueueResponse(in BlkifResponse response)
    {
        if (_responseProducerPrivate == _requestConsumer)
            throw new InvalidOperationException("no consumed request is awaiting a response");
        response.WriteTo(Shared.Slot(_responseProducerPrivate));
        _responseProducerPrivate++;
    }

    /// <summary>RING_PUSH_RESPONSES_AND_CHECK_NOTIFY: publish (release), fence, and say whether to kick the frontend.</summary>
    public bool PushResponses()
    {
        uint old = Shared.ResponseProducer;
        uint now = _responseProducerPrivate;
        Shared.ResponseProducer = now;
        Interlocked.MemoryBarrier();
        return BlkifSharedRing.CrossedEvent(old, now, Shared.ResponseEvent);
    }

    /// <summary>RING_FINAL_CHECK_FOR_REQUESTS: when idle, set req_event = req_cons + 1, fence, look again.</summary>
    public bool FinalCheckForRequests()
    {
        if (UnconsumedRequests > 0)
            return true;
        Shared.RequestEvent = _requestConsumer + 1;
        Interlocked.MemoryBarrier();
        return UnconsumedRequests > 0;
    }
}
