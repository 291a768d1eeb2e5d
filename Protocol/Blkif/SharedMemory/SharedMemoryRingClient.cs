using System.Net.Sockets;

namespace BlkTapCtrl.Protocol.Blkif.SharedMemory;

/// <summary>
/// The frontend (blkfront) end of a shared-memory blkif ring, for tests, benchmarks and tools: connects
/// to the device's unix socket, maps the shared file, and puts requests on the ring with ring.h's
/// barriers and event thresholds (kicking the backend only when <see cref="BlkifFrontRing.PushRequests"/>
/// says so, re-arming rsp_event before sleeping). Request ids are ring slots 0–31, and slot i's data
/// lives in its 11 data pages, as tapdisk expects. Single-threaded.
/// </summary>
public sealed unsafe class SharedMemoryRingClient : IDisposable
{
    private readonly Socket _socket;
    private readonly int _mappingFd, _kickBackend, _kickFrontend;
    private readonly byte* _mapping;
    private readonly Stack<int> _freeIds = new();
    private bool _disposed;

    public SharedRingHello Info { get; }
    public BlkifFrontRing Ring { get; }
    public ulong Sectors => Info.Sectors;

    /// <summary>Kicks sent to the backend (pushes that crossed its req_event) and pushes that needed none.</summary>
    public long KicksSent { get; private set; }
    public long PushesWithoutKick { get; private set; }

    public SharedMemoryRingClient(string socketPath)
    {
        _socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _socket.Connect(new UnixDomainSocketEndPoint(socketPath));
        Span<byte> hello = stackalloc byte[SharedRingHello.Size];
        Span<int> fds = stackalloc int[3];
        SharedRingNative.ReceiveWithFds((int)_socket.Handle, hello, fds);
        (_mappingFd, _kickBackend, _kickFrontend) = (fds[0], fds[1], fds[2]);
        Info = SharedRingHello.Read(hello);
        nint map = SharedRingNative.mmap(0, (nuint)BlkifLayout.MappingSize, SharedRingNative.PROT_READ | SharedRingNative.PROT_WRITE,
            SharedRingNative.MAP_SHARED, _mappingFd, 0);
        if (map == SharedRingNative.MapFailed)
            throw new IOException($"mmap of the shared ring failed: errno {SharedRingNative.LastErrno}");
        _mapping = (byte*)map;
        Ring = new BlkifFrontRing(new BlkifSharedRing(_mapping));
        for (int id = BlkifLayout.RingSlots - 1; id >= 0; id--) _freeIds.Push(id);
    }

    /// <summary>The 4096-byte data page of segment <paramref name="segment"/> of ring slot <paramref name="id"/>.</summary>
    public Span<byte> DataPage(int id, int segment) => new(_mapping + BlkifLayout.DataPageOffset(id, segment), BlkifLayout.PageSize);

    public int FreeIds => _freeIds.Count;

    public bool TryRentId(out int id) => _freeIds.TryPop(out id);

    public void ReturnId(int id) => _freeIds.Push(id);

    /// <summary>
    /// Builds a request for slot <paramref name="id"/> covering <paramref name="sectors"/> sectors (at most
    /// 88) from <paramref name="sector"/>, whole pages from the slot's first data page on.
    /// </summary>
    public static BlkifRequest MakeRequest(BlkifOperation op, int id, ulong sector, int sectors)
    {
        if (sectors is < 1 or > BlkifLayout.MaxSegments * BlkifLayout.SectorsPerPage)
            throw new ArgumentOutOfRangeException(nameof(sectors), sectors, "1 to 88 sectors per request");
        var r = new BlkifRequest { Operation = op, Id = (ulong)id, Sector = sector };
        int segment = 0;
        while (sectors > 0)
        {
            int n = Math.Min(sectors, BlkifLayout.SectorsPerPage);
            r.Segments[segment] = new BlkifSegment((uint)segment, 0, (byte)(n - 1));
            segment++;
            sectors -= n;
        }
        r.SegmentCount = (byte)segment;
        return r;
    }

    public void Queue(in BlkifRequest request) => Ring.QueueRequest(request);

    /// <summary>Publishes queued requests and kicks the backend only if it asked to be woken.</summary>
    public void Push()
    {
        if (Ring.PushRequests())
        {
            SharedRingNative.Kick(_kickBackend);
            KicksSent++;
        }
        else PushesWithoutKick++;
    }

    /// <summary>
    /// Takes every published response; when none is there, re-arms rsp_event (final check) and sleeps on
    /// the backend's eventfd up to <paramref name="timeoutMs"/>. Returns the number taken.
    /// </summary>
    public int Collect(Span<BlkifResponse> responses, int timeoutMs)
    {
        var deadline = Environment.TickCount64 + timeoutMs;
        while (true)
        {
            int n = 0;
            while (n < responses.Length && Ring.TryTakeResponse(out responses[n])) n++;
            if (n > 0) return n;
            if (Ring.FinalCheckForResponses()) continue;
            long left = deadline - Environment.TickCount64;
            if (left <= 0) return 0;
            var pfd = new SharedRingNative.PollFd { Fd = _kickFrontend, Events = SharedRingNative.POLLIN };
            SharedRingNative.poll(&pfd, 1, (int)Math.Min(left, int.MaxValue));
            SharedRingNative.Drain(_kickFrontend);
        }
    }

    /// <summary>Synchronous helper: one request, waits for its response, returns its status.</summary>
    public BlkifStatus Submit(in BlkifRequest request, int timeoutMs = 10_000)
    {
        Queue(request);
        Push();
        Span<BlkifResponse> one = stackalloc BlkifResponse[1];
        if (Collect(one, timeoutMs) == 0)
            throw new TimeoutException($"no response to ring request {request.Id} within {timeoutMs} ms");
        if (one[0].Id != request.Id)
            throw new InvalidOperationException($"response for id {one[0].Id}, expected {request.Id}");
        return one[0].Status;
    }

    /// <summary>Kicks the backend whatever the event threshold says (what a misbehaving frontend may do).</summary>
    public void Kick() => SharedRingNative.Kick(_kickBackend);

    /// <summary>Writes the control byte (blktap2: 1 pause, 2 resume, 3 close) and kicks the backend.</summary>
    public void SendControl(BlkifRingControl control)
    {
        Ring.Shared.Control = control;
        Interlocked.MemoryBarrier();
        SharedRingNative.Kick(_kickBackend);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        SharedRingNative.munmap((nint)_mapping, (nuint)BlkifLayout.MappingSize);
        SharedRingNative.close(_mappingFd);
        SharedRingNative.close(_kickBackend);
        SharedRingNative.close(_kickFrontend);
        _socket.Dispose();
    }
}
