using BlkTapCtrl.Protocol.Blkif;
using BlkTapCtrl.Worker.Interop;
using BlkTapCtrl.Worker.Logging;
using BlkTapCtrl.Worker.Scheduling;
using BlkTapCtrl.Worker.Vbd;

namespace BlkTapCtrl.Worker.Frontends;

/// <summary>
/// The blkif ring frontend of a VBD (reference §3.5/§3.6): on each kick it pulls every published request
/// off the ring (re-arming req_event before it stops, ring.h's final check), checks it, and hands it to
/// the VBD with its data pages as segments — slot <c>id</c>'s segment i is at
/// <c>(1 + id·11 + i)·4096 + first_sect·512</c> of the mapping. Answers go back at rsp_prod_pvt and are
/// published once per kick, kicking the frontend only when its rsp_event asks for it. Then the blktap2
/// control byte is checked (1 pause, 2 resume, 3 close). A frontend that overflows the ring is cut off.
/// </summary>
public sealed unsafe class RingFrontend : IVbdFrontend, IDisposable
{
    private readonly EventLoop _loop;
    private readonly VirtualBlockDevice _vbd;
    private readonly IRingDevice _device;
    private readonly WorkerLog _log;
    private readonly int _kickEvent;
    private readonly int _pumpEvent;
    private readonly BlkifRequest[] _deferred = new BlkifRequest[BlkifLayout.RingSlots];
    private int _deferredCount;
    private BlkifBackRing _ring;
    private bool _submitted;
    private bool _broken;
    private bool _closed;
    private bool _pausedByRing;
    private int _outstanding;

    public int PolledFd => _device.KickFd;

    public RingFrontend(EventLoop loop, VirtualBlockDevice vbd, IRingDevice device, WorkerLog log)
    {
        _loop = loop;
        _vbd = vbd;
        _device = device;
        _log = log;
        _ring = new BlkifBackRing(new BlkifSharedRing(device.Mapping));
        _kickEvent = loop.Register(EventMode.Read, device.KickFd, 0, static (_, _, s) => ((RingFrontend)s!).OnKick(), this);
        _pumpEvent = loop.Register(EventMode.Timeout, -1, 0, static (_, _, s) => ((RingFrontend)s!).Pump(), this);
        loop.Mask(_pumpEvent, true);
        vbd.Attach(this);
        if (device is SharedMemoryRingDevice shm)
        {
            shm.Attaching = OnFrontendAttaching;
            shm.Detached = () => _log.Info("ring_frontend", $"{_device.Describe()}: frontend left");
        }
    }

    public long KicksIn { get; private set; }
    public long KicksOut { get; private set; }
    public long RejectedRequests { get; private set; }
    public bool IsBroken => _broken;

    /// <summary>A new shared-memory frontend: only once the last one's requests are answered; the ring starts afresh.</summary>
    private bool OnFrontendAttaching()
    {
        if (_outstanding > 0 || _deferredCount > 0 || _closed) return false;
        // A pause the last frontend put in through the ring is its own: the next one must not find the disk stuck.
        if (_pausedByRing && !ResumeFromRing("a new frontend attaches")) return false;
        var shared = new BlkifSharedRing(_device.Mapping);
        shared.Initialize();
        _ring = new BlkifBackRing(shared);
        _broken = false;
        _loop.Mask(_kickEvent, false);
        return true;
    }

    private void OnKick()
    {
        _device.AcknowledgeKick();
        KicksIn++;
        if (!_broken && !_closed) Consume();
        CheckControl();
    }

    private void Consume()
    {
        try
        {
            do
            {
                while (_deferredCount == 0 && _ring.TryTakeRequest(out var request))
                    Handle(request);
                if (_deferredCount > 0) break;
            } while (_ring.FinalCheckForRequests());
        }
        catch (BlkifFormatException e)
        {
            _broken = true;
            _loop.Mask(_kickEvent, true);
            _log.Error(Errno.EINVAL, "ring_frontend", $"{_device.Describe()}: {e.Message}; the frontend is cut off");
        }
        EndBatch();
    }

    private void Handle(in BlkifRequest request)
    {
        string? problem = request.Id >= BlkifLayout.RingSlots
            ? $"id {request.Id} is not a ring slot (0..{BlkifLayout.RingSlots - 1})"
            : request.Validate(_vbd.Sectors);
        if (problem == null && request.Operation == BlkifOperation.Write && _vbd.ReadOnly)
            problem = "write to a read-only VBD";
        if (problem != null)
        {
            RejectedRequests++;
            _log.Error(Errno.EINVAL, "ring_frontend", $"req {request.Id}: {problem}");
            Respond(request.Id, request.Operation, BlkifStatus.Error);
            _respondedNow = true;
            return;
        }
        var v = _vbd.TryRentRequest(this);
        if (v == null)
        {
            _deferred[_deferredCount++] = request;
            _loop.Mask(_pumpEvent, false);
            return;
        }
        Fill(v, request);
        _vbd.Submit(v);
        _outstanding++;
        _submitted = true;
    }

    private bool _respondedNow;

    private void Fill(VbdRequest v, in BlkifRequest request)
    {
        v.Operation = request.Operation == BlkifOperation.Write ? VbdOperation.Write : VbdOperation.Read;
        v.Sector = request.Sector;
        v.Tag = request.Id;
        int id = (int)request.Id;
        for (int i = 0; i < request.SegmentCount; i++)
        {
            var s = request.Segments[i];
            v.AddSegment((nint)(_device.Mapping + BlkifLayout.DataPageOffset(id, i) + s.FirstSector * BlkifLayout.SectorSize), s.SectorCount);
        }
    }

    private void EndBatch()
    {
        if (_submitted)
        {
            _submitted = false;
            _vbd.ProcessSubmitted();
        }
        if (_respondedNow)
        {
            _respondedNow = false;
            Publish();
        }
    }

    private void Pump()
    {
        _loop.Mask(_pumpEvent, true);
        int done = 0;
        while (done < _deferredCount)
        {
            var v = _vbd.TryRentRequest(this);
            if (v == null) break;
            Fill(v, _deferred[done++]);
            _vbd.Submit(v);
            _outstanding++;
            _submitted = true;
        }
        Array.Copy(_deferred, done, _deferred, 0, _deferredCount - done);
        _deferredCount -= done;
        if (_deferredCount == 0 && !_broken && !_closed) Consume();
        else EndBatch();
    }

    private void Respond(ulong id, BlkifOperation op, BlkifStatus status)
    {
        try { _ring.QueueResponse(new BlkifResponse(id, op, status)); }
        catch (InvalidOperationException e) { _log.Error(Errno.EINVAL, "ring_frontend", e.Message); }
    }

    public void OnRequestCompleted(VbdRequest request)
    {
        _outstanding--;
        Respond(request.Tag, (BlkifOperation)request.Operation, request.Error == 0 ? BlkifStatus.Okay : BlkifStatus.Error);
    }

    public void OnResponsesReady()
    {
        Publish();
        if (_deferredCount > 0) _loop.Mask(_pumpEvent, false);
    }

    private void Publish()
    {
        if (_ring.PushResponses())
        {
            KicksOut++;
            _device.NotifyFrontend();
        }
    }

    /// <summary>The blktap2 control byte: close asks the VBD to close (answers still go out first).</summary>
    private void CheckControl()
    {
        var shared = _ring.Shared;
        var control = shared.Control;
        if (control == BlkifRingControl.None) return;
        shared.Control = BlkifRingControl.None;
        switch (control)
        {
            case BlkifRingControl.Close:
                _log.Info("ring_frontend", $"{_device.Describe()}: close requested on the ring");
                _vbd.Close();
                break;
            case BlkifRingControl.Pause:
                _log.Info("ring_frontend", $"{_device.Describe()}: pause requested on the ring");
                // A pause already under way (the ring's own, or the supervisor's) is not the ring's to take back.
                if ((_vbd.Flags & (VbdFlags.Paused | VbdFlags.PauseRequested)) == 0 && _vbd.Pause() == 0)
                    _pausedByRing = true;
                break;
            case BlkifRingControl.Resume:
                if (_pausedByRing) ResumeFromRing("resume requested on the ring");
                else _log.Warn("ring_frontend", $"{_device.Describe()}: resume message for a VBD the ring did not pause; ignored");
                break;
            default:
                _log.Warn("ring_frontend", $"{_device.Describe()}: control byte {(byte)control} ignored");
                break;
        }
    }

    /// <summary>
    /// tapdisk_vbd_resume_ring: reopen the image the VBD was opened with (no REOPEN path to change it here).
    /// Before the pause has taken hold (requests still draining) there is nothing to resume yet: the
    /// frontend may ask again, or leave, and the next one's attach resumes it.
    /// </summary>
    private bool ResumeFromRing(string why)
    {
        if ((_vbd.Flags & VbdFlags.Paused) == 0 || _vbd.Parameters is not { } parameters)
        {
            _log.Warn("ring_frontend", $"{_device.Describe()}: {why}, but the ring's pause has not taken hold yet; ignored");
            return false;
        }
        int err = _vbd.Resume(parameters);
        if (err != 0)
        {
            _log.Error(err, "ring_frontend", $"{_device.Describe()}: {why}: resuming {parameters.Path} failed");
            return false;
        }
        _pausedByRing = false;
        _log.Info("ring_frontend", $"{_device.Describe()}: {why}: resumed");
        return true;
    }

    public void OnVbdClosed()
    {
        _closed = true;
        _loop.Mask(_kickEvent, true);
    }

    public void Dispose()
    {
        _loop.Unregister(_kickEvent);
        _loop.Unregister(_pumpEvent);
        _vbd.Detach(this);
    }
}
