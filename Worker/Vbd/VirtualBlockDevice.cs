using BlkTapCtrl.Worker.Images;
using BlkTapCtrl.Worker.Interop;
using BlkTapCtrl.Worker.IO;
using BlkTapCtrl.Worker.Server;

namespace BlkTapCtrl.Worker.Vbd;

/// <summary>
/// One virtual block device served by this worker (reference §3.5): its image chain, its request
/// queues (new → pending → failed/completed), retry rules and control state.
/// <para><b>Frontend API.</b> Everything runs on the server's event-loop thread; no method is
/// thread-safe. A frontend (NBD connection, blkif ring) registers its fds on
/// <see cref="TapdiskServer.Loop"/> and, from its callbacks:</para>
/// <list type="number">
/// <item><see cref="Attach"/> itself once; read <see cref="Sectors"/>, <see cref="SectorSize"/>,
/// <see cref="ReadOnly"/> (valid while <see cref="IsOpen"/>).</item>
/// <item>per request: <see cref="TryRentRequest"/> (null ⇒ all <see cref="RequestSlots"/> busy: stop
/// reading from the client until a completion), set <see cref="VbdRequest.Operation"/>,
/// <see cref="VbdRequest.Sector"/>, <see cref="VbdRequest.Tag"/>, add 1–11 segments with
/// <see cref="VbdRequest.AddSegment"/> (none for a flush), then <see cref="Submit"/>.</item>
/// <item>after a batch of submits (one ring event / one socket read): <see cref="ProcessSubmitted"/>
/// — counts a kick in and issues the batch.</item>
/// <item>answers arrive later in the same or a later loop pass through
/// <see cref="IVbdFrontend.OnRequestCompleted"/>, followed by one <see cref="IVbdFrontend.OnResponsesReady"/>
/// (the kick out). Each submitted request is answered exactly once, also when the VBD pauses, fails
/// or closes; after <see cref="IVbdFrontend.OnVbdClosed"/> nothing more arrives.</item>
/// </list>
/// <para>Standalone (no control FIFOs): <c>var server = new TapdiskServer(options);
/// var vbd = server.CreateVbd(cookie); int err = vbd.Open(new VbdOpenParameters(path, DriverType.Aio));
/// … attach a frontend …; server.Run();</c> — <see cref="TapdiskServer.Run"/> returns when the last VBD closed
/// (call <see cref="Close"/> / <see cref="ForceShutdown"/>, or let SIGTERM do it).</para>
/// </summary>
public sealed class VirtualBlockDevice
{
    public const long RequestTimeoutMicroseconds = 120_000_000;
    public const long RetryIntervalMicroseconds = 1_000_000;
    public const long WatchdogMicroseconds = 10_000_000;
    public const int DefaultRequestSlots = 128;

    private readonly TapdiskServer _server;
    private readonly VbdRequest[] _slots;
    private readonly Stack<VbdRequest> _freeSlots;
    private readonly VbdRequestList _new = new("new");
    private readonly VbdRequestList _pending = new("pending");
    private readonly VbdRequestList _failed = new("failed");
    private readonly VbdRequestList _completed = new("completed");
    private readonly List<FrontendEntry> _frontends = new();
    private int _unpublished;
    private VbdOpenParameters? _params;
    private ImageChain? _chain;
    private bool _closeReplied;

    private sealed class FrontendEntry(IVbdFrontend frontend)
    {
        public readonly IVbdFrontend Frontend = frontend;
        public int Unpublished;
    }

    internal VirtualBlockDevice(TapdiskServer server, ushort cookie, int requestSlots)
    {
        _server = server;
        Cookie = cookie;
        _slots = new VbdRequest[requestSlots];
        _freeSlots = new Stack<VbdRequest>(requestSlots);
        for (int i = requestSlots - 1; i >= 0; i--)
        {
            _slots[i] = new VbdRequest(this, i);
            _freeSlots.Push(_slots[i]);
        }
        Flags = VbdFlags.Closed;
        LastProgress = server.Clock.NowMicroseconds;
    }

    /// <summary>The supervisor's per-VBD number (control record cookie).</summary>
    public ushort Cookie { get; }
    public VbdFlags Flags { get; private set; }
    public VbdCounters Counters { get; } = new();
    public TapdiskServer Server => _server;
    public IVbdControlReplies? ControlReplies { get; set; }

    /// <summary>The I/O backend this VBD's drivers use (chosen per VBD, see <see cref="TapdiskServerOptions"/>).</summary>
    public IoQueue Io { get; internal set; } = null!;

    public ImageChain? Chain => _chain;

    /// <summary>What the VBD was opened (or last resumed) with: a resume that keeps the image passes these back.</summary>
    public VbdOpenParameters? Parameters => _params;
    public bool IsOpen => _chain != null && (Flags & VbdFlags.Closed) == 0;

    /// <summary>Ready ⇔ none of DEAD, CLOSED, QUIESCED, QUIESCE_REQUESTED.</summary>
    public bool IsReady => (Flags & (VbdFlags.Dead | VbdFlags.Closed | VbdFlags.Quiesced | VbdFlags.QuiesceRequested)) == 0;

    /// <summary>Virtual disk size in 512-byte sectors (the leaf's).</summary>
    public ulong Sectors { get; private set; }
    public uint SectorSize { get; private set; } = 512;
    /// <summary>Opened read-only: writes are answered with −EINVAL.</summary>
    public bool ReadOnly { get; private set; }
    public int RequestSlots => _slots.Length;
    public int FreeRequestSlots => _freeSlots.Count;
    public long LastProgress { get; private set; }

    public int NewCount => _new.Count;
    public int PendingCount => _pending.Count;
    public int FailedCount => _failed.Count;
    public int CompletedCount => _completed.Count;
    public bool HasPendingIo => _pending.Count > 0;

    private long Now => _server.Clock.NowMicroseconds;
    private bool Has(VbdFlags f) => (Flags & f) != 0;
    private void Set(VbdFlags f) => Flags |= f;
    private void Clear(VbdFlags f) => Flags &= ~f;

    // ======================= frontend API =======================

    /// <summary>Registers a frontend for completions and kicks. Idempotent.</summary>
    public void Attach(IVbdFrontend frontend)
    {
        foreach (var e in _frontends)
            if (e.Frontend == frontend) return;
        _frontends.Add(new FrontendEntry(frontend));
    }

    /// <summary>
    /// Forgets a frontend (e.g. its connection closed). Its requests still run to completion (the data
    /// must not be written half-way), but their answers are dropped; keep the buffers alive until then
    /// or until <see cref="OutstandingRequests"/> for it reaches 0.
    /// </summary>
    public void Detach(IVbdFrontend frontend) => _frontends.RemoveAll(e => e.Frontend == frontend);

    /// <summary>The wake-up ring bits of the attached frontends' fds (<see cref="IVbdFrontend.PolledFd"/>), for the debug dump.</summary>
    public ulong FrontendFdMask
    {
        get
        {
            ulong mask = 0;
            foreach (var e in _frontends)
                if (e.Frontend.PolledFd >= 0) mask |= Scheduling.WakeupRing.MaskOf(e.Frontend.PolledFd);
            return mask;
        }
    }

    /// <summary>Requests rented by <paramref name="frontend"/> and not yet answered.</summary>
    public int OutstandingRequests(IVbdFrontend frontend)
    {
        int n = 0;
        foreach (var r in _slots)
            if (r.Rented && r.Frontend == frontend) n++;
        return n;
    }

    /// <summary>A free request from the pool, or null when all are in use or the VBD is closed.</summary>
    public VbdRequest? TryRentRequest(IVbdFrontend frontend)
    {
        if (_freeSlots.Count == 0 || _closeReplied) return null;
        var r = _freeSlots.Pop();
        r.Reset();
        r.Rented = true;
        r.Frontend = frontend;
        return r;
    }

    /// <summary>Gives back a rented request that was never submitted.</summary>
    public void ReturnUnsubmitted(VbdRequest request)
    {
        if (!request.Rented || request.Submitted)
            throw new InvalidOperationException($"request {request.Slot} is not a rented, unsubmitted request");
        Release(request);
    }

    /// <summary>Queues a filled request on <c>new</c>; it is issued by <see cref="ProcessSubmitted"/>.</summary>
    public void Submit(VbdRequest request)
    {
        if (request.Vbd != this || !request.Rented || request.Submitted)
            throw new InvalidOperationException($"request {request.Slot} was not rented from VBD {Cookie} or is already submitted");
        request.Submitted = true;
        request.ArrivalTime = Now;
        Counters.Received++;
        _new.Append(request);
    }

    /// <summary>One frontend batch is in (a ring event): counts the kick in and issues what is queued.</summary>
    public void ProcessSubmitted()
    {
        Counters.KicksIn++;
        Issue();
    }

    // ======================= open / control =======================

    /// <summary>Opens the image chain. Returns 0 or a negative errno.</summary>
    public int Open(VbdOpenParameters parameters)
    {
        if (_chain != null || _closeReplied)
            return -Errno.EBUSY;
        int err = OpenChain(parameters, parameters.Flags, out _);
        if (err != 0) return err;
        _params = parameters;
        ReadOnly = (parameters.Flags & ImageOpenFlags.ReadOnly) != 0;
        Flags = VbdFlags.None;
        MarkProgress();
        return 0;
    }

    /// <summary>
    /// LVM reactivation (§3.9, for any driver: it reads only VHD metadata), then the chain.
    /// <paramref name="reactivationFailed"/> tells the caller not to retry: the reactivator already retried its walk.
    /// </summary>
    private int OpenChain(VbdOpenParameters parameters, ImageOpenFlags flags, out bool reactivationFailed)
    {
        var context = new DriverContext(Io, _server.Log, _server.Loop);
        int err = _server.Lvm.Reactivate(parameters);
        reactivationFailed = err != 0;
        if (err == 0)
            err = ImageChain.Open(parameters.Path, parameters.Type, flags, _server.DriverFactory, context, _server.Clock, out _chain);
        if (err != 0)
        {
            _chain = null;
            return err;
        }
        Sectors = _chain!.Leaf.Sectors;
        SectorSize = _chain.Leaf.Driver.SectorSize;
        return 0;
    }

    /// <summary>PAUSE: quiesce, close the images, then reply PAUSE_RSP (maybe in a later pass).</summary>
    public int Pause()
    {
        if (_chain == null && !Has(VbdFlags.Paused)) return -Errno.EINVAL;
        if (Has(VbdFlags.Paused)) { ControlReplies?.PauseCompleted(this); return 0; }
        Set(VbdFlags.PauseRequested);
        TryPause();
        return 0;
    }

    /// <summary>RESUME: LVM name check, then reopens the chain from the message's path (STRICT), 10 attempts 1 s apart.</summary>
    public int Resume(VbdOpenParameters parameters)
    {
        if (!Has(VbdFlags.Paused)) return -Errno.EINVAL;
        var merged = _params == null ? parameters : parameters with
        {
            Flags = parameters.Flags | _params.Flags,
            Storage = parameters.Storage == Protocol.Control.StorageType.Unknown ? _params.Storage : parameters.Storage,
        };
        int err = 0;
        for (int attempt = 1; attempt <= ImageChain.OpenAttempts; attempt++)
        {
            // The LVM name check may move the VBD to the VHD volume a live snapshot renamed it to (kept for later reopens).
            err = _server.Lvm.CheckResumeVolume(merged, out merged);
            if (err == 0)
            {
                err = OpenChain(merged, merged.Flags | ImageOpenFlags.Strict, out bool reactivationFailed);
                if (err == 0 || reactivationFailed) break;
            }
            if (attempt < ImageChain.OpenAttempts) _server.Clock.Sleep(ImageChain.RetryIntervalMicroseconds);
        }
        if (err != 0)
        {
            _server.Log.Error(err, "tapdisk_vbd_resume", $"resuming {merged.Path} failed");
            return err;
        }
        _params = merged with { Flags = merged.Flags & ~ImageOpenFlags.Strict };
        Clear(VbdFlags.Quiesced | VbdFlags.QuiesceRequested | VbdFlags.Paused | VbdFlags.PauseRequested | VbdFlags.Closed);
        MarkProgress();
        return 0;
    }

    /// <summary>CLOSE: drains, then CLOSE_RSP and removal (maybe in a later pass).</summary>
    public int Close()
    {
        if (_closeReplied) return -Errno.EINVAL;
        return TryClose();
    }

    /// <summary>
    /// FORCE_SHUTDOWN: like close, but queued requests fail at once and only in-flight I/O is awaited.
    /// Never recurses (CA-39535): the kick used while closing only dispatches the queue.
    /// </summary>
    public int ForceShutdown()
    {
        if (_closeReplied) return -Errno.EINVAL;
        int err = TryClose();
        if (err == -Errno.EAGAIN)
        {
            Quiesce();
            Set(VbdFlags.Dead);
            Issue();
        }
        return 0;
    }

    /// <summary>XFSZ / fatal errors: fail everything queued, keep only in-flight I/O.</summary>
    public void KillQueue()
    {
        Quiesce();
        Set(VbdFlags.Dead);
    }

    // ======================= engine =======================

    internal void MarkProgress() => LastProgress = Now;

    /// <summary>check_state: queue state, then retry quiesce/pause/close if requested.</summary>
    public void CheckState()
    {
        CheckQueueState();
        if (Has(VbdFlags.QuiesceRequested)) Quiesce();
        if (Has(VbdFlags.PauseRequested)) TryPause();
        if (Has(VbdFlags.ShutdownRequested)) TryClose();
    }

    /// <summary>
    /// The kick (CA-39535: only dispatches the queue, never close/pause): answers completed requests
    /// and, if any were answered since the last kick, tells their frontends.
    /// </summary>
    public void Kick()
    {
        CheckQueueState();
        if (_unpublished == 0) return;
        Counters.KicksOut++;
        Counters.Kicked += _unpublished;
        _unpublished = 0;
        for (int i = 0; i < _frontends.Count; i++)
        {
            var e = _frontends[i];
            if (e.Unpublished == 0) continue;
            e.Unpublished = 0;
            e.Frontend.OnResponsesReady();
        }
    }

    private void CheckQueueState()
    {
        long now = Now;
        var v = _failed.Head;
        while (v != null)
        {
            var next = v.Next;
            if (now - v.ArrivalTime > RequestTimeoutMicroseconds)
                _completed.Append(v);
            v = next;
        }
        if (!_new.IsEmpty || !_failed.IsEmpty)
            Issue();
        while (_completed.Head is { } done)
        {
            _completed.Remove(done);
            Respond(done);
        }
    }

    private void Respond(VbdRequest v)
    {
        Counters.Returned++;
        if (v.Failed)
        {
            if (v.Error == 0) v.Error = -Errno.EIO;
            _server.Log.Error(v.Error, "tapdisk_vbd_make_response",
                $"returning BLKIF_RSP -1 for req {v.Slot} ({v.Operation.LogName()} 0x{v.TotalSectors:x} secs at 0x{v.Sector:x}, {v.NumRetries} retries)");
        }
        var frontend = v.Frontend;
        FrontendEntry? entry = null;
        for (int i = 0; i < _frontends.Count; i++)
            if (_frontends[i].Frontend == frontend) { entry = _frontends[i]; break; }
        if (entry != null)
        {
            entry.Unpublished++;
            _unpublished++;
            entry.Frontend.OnRequestCompleted(v);
        }
        Release(v);
    }

    private void Release(VbdRequest v)
    {
        v.List?.Remove(v);
        v.Reset();
        v.Rented = false;
        _freeSlots.Push(v);
    }

    private void Issue()
    {
        if (Has(VbdFlags.Dead))
        {
            FailQueued(-Errno.EIO);
            return;
        }
        if (!IsReady) return;
        ReissueFailed();
        IssueNew();
    }

    private void FailQueued(int error)
    {
        while (_new.Head is { } v) { v.Fail(error); _completed.Append(v); }
        while (_failed.Head is { } v) { v.Fail(error); _completed.Append(v); }
        Clear(VbdFlags.RetryNeeded);
    }

    // CA-29373: iterate over the requests present at the start (a request failing synchronously is
    // re-appended to failed and must not be revisited in this pass, or a synchronous EBUSY spins), and
    // stop only when the queue itself refuses work, not because one request failed.
    private void ReissueFailed()
    {
        long now = Now;
        int n = _failed.Count;
        var v = _failed.Head;
        for (int i = 0; i < n && v != null; i++)
        {
            var next = v.Next;
            if (v.PendingUnits > 0) { v = next; continue; }
            if (Has(VbdFlags.ShutdownRequested))
            {
                _completed.Append(v);
            }
            else if (v.Error == -Errno.EBUSY || now - v.LastTry >= RetryIntervalMicroseconds)
            {
                Counters.Retries++;
                v.NumRetries++;
                v.ClearFailure();
                if (IssueOne(v) != 0) break;
            }
            v = next;
        }
        if (_failed.IsEmpty) Clear(VbdFlags.RetryNeeded); else Set(VbdFlags.RetryNeeded);
    }

    private void IssueNew()
    {
        int n = _new.Count;
        for (int i = 0; i < n; i++)
        {
            var v = _new.Head;
            if (v == null || IssueOne(v) != 0) break;
        }
    }

    /// <summary>Issues one vreq. Returns non-zero only when the queue refused work (stop issuing).</summary>
    private int IssueOne(VbdRequest v)
    {
        v.Submitting = 1;
        MarkProgress();
        v.LastTry = Now;
        _pending.Append(v);
        int refused = CheckQueue();
        if (refused != 0)
        {
            v.Fail(refused);
        }
        else
        {
            int err = CheckRequest(v);
            if (err != 0)
            {
                v.Fail(err);
                v.Invalid = true;
            }
            else SplitIntoTaps(v);
        }
        v.Submitting--;
        if (v.PendingUnits == 0) CompleteVreq(v);
        return refused;
    }

    private int CheckQueue()
    {
        if (_chain == null) return -Errno.ENOSYS;
        if (!IsReady) return -Errno.EAGAIN;
        return 0;
    }

    private int CheckRequest(VbdRequest v)
    {
        switch (v.Operation)
        {
            case VbdOperation.Read:
                break;
            case VbdOperation.Write:
                if (ReadOnly) return -Errno.EINVAL;
                break;
            case VbdOperation.Flush:
                return v.SegmentCount == 0 ? 0 : -Errno.EINVAL;
            default:
                return -Errno.EINVAL;
        }
        if (v.SegmentCount is < 1 or > VbdRequest.MaxSegments) return -Errno.EINVAL;
        for (int i = 0; i < v.SegmentCount; i++)
            if (v.SegmentSectors(i) < 1) return -Errno.EINVAL;
        if (v.Sector + (ulong)v.TotalSectors > Sectors || v.Sector + (ulong)v.TotalSectors < v.Sector) return -Errno.EINVAL;
        return 0;
    }

    // CA-27732: one treq per run of segments that are contiguous in memory.
    private void SplitIntoTaps(VbdRequest v)
    {
        var leaf = _chain!.Leaf;
        if (v.Operation == VbdOperation.Flush)
        {
            v.PendingUnits += 1;
            leaf.Queue(new TapRequest(v, VbdOperation.Flush, 0, 0, 0, leaf));
            return;
        }
        ulong sector = v.Sector;
        nint runStart = v.SegmentBuffer(0);
        int runSectors = v.SegmentSectors(0);
        for (int i = 1; i <= v.SegmentCount; i++)
        {
            if (i < v.SegmentCount && runStart + runSectors * TapRequest.SectorSize == v.SegmentBuffer(i))
            {
                runSectors += v.SegmentSectors(i);
                continue;
            }
            v.PendingUnits += runSectors;
            var tap = new TapRequest(v, v.Operation, sector, runSectors, runStart, leaf);
            sector += (ulong)runSectors;
            if (i < v.SegmentCount)
            {
                runStart = v.SegmentBuffer(i);
                runSectors = v.SegmentSectors(i);
            }
            leaf.Queue(tap);
        }
    }

    /// <summary>A treq finished (drivers call this through <see cref="TapRequest.Complete"/>).</summary>
    internal void CompleteTap(in TapRequest tap, int error)
    {
        var v = tap.Owner;
        MarkProgress();
        if (error > 0) error = -error;
        long units = tap.Operation == VbdOperation.Flush ? 1 : tap.Sectors;
        if (units > v.PendingUnits || v.List != _pending)
            throw new InvalidOperationException(
                $"VBD {Cookie}: request {v.Slot} completed {units} sectors with only {v.PendingUnits} pending (driver completed twice?)");
        v.PendingUnits -= units;
        if (error != 0)
        {
            v.Fail(error);
            if (error != -Errno.EBUSY)
            {
                Counters.Errors++;
                _server.Log.Error(error, "tapdisk_vbd_complete_td_request",
                    $"req {v.Slot}: {tap.Operation.LogName()} 0x{tap.Sectors:x} secs to 0x{tap.Sector:x}");
            }
        }
        if (v.Submitting == 0 && v.PendingUnits == 0) CompleteVreq(v);
    }

    private void CompleteVreq(VbdRequest v)
    {
        if (IsRetryable(v)) _failed.Append(v);
        else _completed.Append(v);
        if (!_failed.IsEmpty) Set(VbdFlags.RetryNeeded);
    }

    // CA-29373: ESTALE and ENOSPC are answered at once; others retried until 120 s old.
    private bool IsRetryable(VbdRequest v)
    {
        // Divergence: the original also retried requests its ring check rejected (bad range, write
        // to a read-only disk) for 120 s; retrying cannot make them valid, so they are answered at once.
        if (!v.Failed || v.Invalid || Has(VbdFlags.Dead) || Has(VbdFlags.ShutdownRequested)) return false;
        int e = Math.Abs(v.Error);
        if (e == Errno.ESTALE || e == Errno.ENOSPC) return false;
        return Now - v.ArrivalTime <= RequestTimeoutMicroseconds;
    }

    private int Quiesce()
    {
        if (!_pending.IsEmpty)
        {
            Set(VbdFlags.QuiesceRequested);
            return -Errno.EAGAIN;
        }
        Clear(VbdFlags.QuiesceRequested);
        Set(VbdFlags.Quiesced);
        return 0;
    }

    private void TryPause()
    {
        if (Quiesce() != 0) return;
        CloseImages();
        Set(VbdFlags.Paused);
        Clear(VbdFlags.PauseRequested);
        ControlReplies?.PauseCompleted(this);
    }

    private int TryClose()
    {
        if (!_pending.IsEmpty || (IsReady && (!_new.IsEmpty || !_failed.IsEmpty || !_completed.IsEmpty)))
        {
            Set(VbdFlags.ShutdownRequested);
            return -Errno.EAGAIN;
        }
        // A paused or dead VBD may still hold queued requests; the original closed without answering
        // them. Every request gets exactly one answer, so fail them before the final kick.
        FailQueued(-Errno.EIO);
        Kick();
        _server.Log.Info("tapdisk_vbd_close", $"VBD {Cookie}: {Counters}");
        CloseImages();
        Set(VbdFlags.Closed | VbdFlags.Dead);
        Clear(VbdFlags.ShutdownRequested);
        _closeReplied = true;
        var frontends = _frontends.ToArray();
        _frontends.Clear();
        foreach (var e in frontends) e.Frontend.OnVbdClosed();
        ControlReplies?.CloseCompleted(this);
        _server.RemoveVbd(this);
        return 0;
    }

    private void CloseImages()
    {
        _chain?.Close();
        _chain = null;
    }

    public string DebugSummary() =>
        $"VBD {Cookie}: flags {Flags}, new {_new.Count} pending {_pending.Count} failed {_failed.Count} completed {_completed.Count}, " +
        $"last activity {(Now - LastProgress) / 1000} ms ago, {Counters}";
}
