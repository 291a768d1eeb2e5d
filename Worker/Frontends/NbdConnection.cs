using System.Net.Sockets;
using System.Runtime.InteropServices;
using BlkTapCtrl.Diagnostics.Native;
using BlkTapCtrl.Protocol.Nbd;
using BlkTapCtrl.Worker.Images;
using BlkTapCtrl.Worker.Interop;
using BlkTapCtrl.Worker.IO;
using BlkTapCtrl.Worker.Scheduling;
using BlkTapCtrl.Worker.Vbd;

namespace BlkTapCtrl.Worker.Frontends;

/// <summary>
/// One NBD client on a non-blocking socket, driven by the worker's event loop: greeting and option
/// haggling (<see cref="NbdNegotiation"/>), then requests turned into VBD requests and answered with
/// simple or structured replies. A client that breaks the protocol (bad magic, flags we did not offer)
/// is disconnected; every other bad request gets an NBD error and the session goes on.
/// <para>Hot path: the request header is parsed from the input buffer, WRITE payload is received
/// straight into a pooled 4096-aligned buffer, the VBD gets a pointer to it, and replies leave with one
/// <c>sendmsg</c> gathering the headers and data of every finished request. Nothing is allocated per
/// request once the pools are warm.</para>
/// </summary>
public sealed unsafe class NbdConnection : IVbdFrontend
{
    public const int InputBufferSize = 256 * 1024;
    public const int MaxRequestsInFlight = 128;
    public const long MaxBytesInFlight = 128L << 20;
    private const int MaxIov = 64;
    private const int MaxReadsPerWakeup = 16;
    private const int MaxDescriptors = 1024;

    private enum Phase { ClientFlags, Options, Transmission, Closed }

    private readonly NbdServer _server;
    private readonly Socket _socket;
    private readonly int _fd;
    private readonly EventLoop _loop;
    private readonly VirtualBlockDevice _vbd;
    private readonly NbdExport _export;
    private readonly NbdNegotiation _negotiation;
    private readonly int _readEvent;
    private readonly int _writeEvent;
    private readonly int _pumpEvent;
    private readonly byte* _in;
    private readonly IoVec* _iov;
    private readonly Stack<NbdRequestSlot> _freeSlots = new();
    private readonly NbdBlockDescriptor[] _descriptors = new NbdBlockDescriptor[MaxDescriptors];

    private Phase _phase = Phase.ClientFlags;
    private int _inStart, _inEnd;
    private int _handshakeSent;
    private uint _optionSkip;
    private bool _closeAfterFlush;
    private bool _disconnecting;
    private bool _structured;
    private NbdRequestSlot? _payloadSlot;
    private ulong _discard;
    private NbdSlotQueue _waiting;
    private NbdSlotQueue _sending;
    private int _sendOffset;
    private int _inFlight;
    private long _bytesInFlight;
    private bool _blocked;
    private bool _submitted;
    private bool _freed;

    public int PolledFd => _fd;

    internal NbdConnection(NbdServer server, Socket socket, string peer)
    {
        _server = server;
        _socket = socket;
        _socket.Blocking = false;
        WidenSendBuffer(socket);
        _fd = (int)socket.Handle;
        _loop = server.Loop;
        _export = server.Export;
        _vbd = server.Export.Vbd;
        Peer = peer;
        _negotiation = new NbdNegotiation(_export);
        _in = (byte*)NativeMemory.AlignedAlloc(InputBufferSize, 64);
        _iov = (IoVec*)NativeMemory.Alloc((nuint)(MaxIov * sizeof(IoVec)));
        _readEvent = _loop.Register(EventMode.Read, _fd, 0, static (_, _, s) => ((NbdConnection)s!).OnReadable(), this);
        _writeEvent = _loop.Register(EventMode.Write, _fd, 0, static (_, _, s) => ((NbdConnection)s!).TrySend(), this);
        _loop.Mask(_writeEvent, true);
        // A zero timeout, unmasked when work must continue on the next pass (a request waiting for a
        // free VBD request, buffered input after a stall, a FUA flush, final clean-up).
        _pumpEvent = _loop.Register(EventMode.Timeout, -1, 0, static (_, _, s) => ((NbdConnection)s!).Pump(), this);
        _loop.Mask(_pumpEvent, true);
        _vbd.Attach(this);
    }

    /// <summary>
    /// Sends the greeting. Not in the constructor: the send may fail (a client gone before it was
    /// accepted) and close the connection, which must find it already in the server's list to leave it.
    /// </summary>
    internal void Start()
    {
        _negotiation.WriteGreeting();
        TrySend();
    }

    /// <summary>Socket send buffer asked for on every connection.</summary>
    public const int SendBufferBytes = 4 << 20;
    private const int SolSocket = 1, SoSndBufForce = 32;

    /// <summary>
    /// A 1 MiB READ reply does not fit the default ~200 KiB socket buffer: the loop would send it in five
    /// pieces, waking for writability between them while the client drains each. With a few MiB the
    /// replies of a whole batch leave in one sendmsg and the loop goes back to reading requests (seq-read
    /// 1M QD8 from the page cache: about +40%). SO_SNDBUFFORCE (root, as tapdisk runs) passes
    /// net.core.wmem_max; otherwise SO_SNDBUF up to it. Best effort: a smaller buffer only costs wake-ups.
    /// </summary>
    private static void WidenSendBuffer(Socket socket)
    {
        try
        {
            Span<byte> value = stackalloc byte[sizeof(int)];
            MemoryMarshal.Write(value, SendBufferBytes);
            socket.SetRawSocketOption(SolSocket, SoSndBufForce, value);
            return;
        }
        catch (SocketException) { } // EPERM without CAP_NET_ADMIN
        try
        {
            if (socket.SendBufferSize < SendBufferBytes) socket.SendBufferSize = SendBufferBytes;
        }
        catch (SocketException) { }
    }

    public string Peer { get; }
    public bool IsClosed => _phase == Phase.Closed;
    public bool InTransmission => _phase == Phase.Transmission;
    public bool StructuredReplies => _structured;
    /// <summary>Why the connection was closed (null while open).</summary>
    public string? CloseReason { get; private set; }
    public long RequestsServed { get; private set; }

    // ============================== input ==============================

    private void OnReadable()
    {
        for (int round = 0; round < MaxReadsPerWakeup && _phase != Phase.Closed && !_blocked && !_disconnecting; round++)
        {
            nint n;
            if (_payloadSlot is { } slot)
            {
                var data = slot.Data!;
                n = LibC.recv(_fd, (byte*)data.Pointer + slot.Received, (int)slot.Request.Length - slot.Received, LibC.MSG_DONTWAIT);
                if (n > 0)
                {
                    slot.Received += (int)n;
                    if (slot.Received == (int)slot.Request.Length)
                    {
                        _payloadSlot = null;
                        Start(slot);
                    }
                    continue;
                }
            }
            else
            {
                CompactInput();
                int space = InputBufferSize - _inEnd;
                if (space == 0) break;
                n = LibC.recv(_fd, _in + _inEnd, space, LibC.MSG_DONTWAIT);
                if (n > 0)
                {
                    _inEnd += (int)n;
                    Parse();
                    continue;
                }
            }
            if (n == 0)
            {
                Close("client closed the connection");
                return;
            }
            int errno = LibC.LastErrno;
            if (errno == Errno.EAGAIN || errno == Errno.EINTR) break;
            Close($"receive failed: {Errno.Name(errno)}");
            return;
        }
        EndBatch();
    }

    private void CompactInput()
    {
        if (_inStart == _inEnd)
        {
            _inStart = _inEnd = 0;
        }
        else if (_inStart > 0 && InputBufferSize - _inEnd < 64 * 1024)
        {
            Buffer.MemoryCopy(_in + _inStart, _in, InputBufferSize, _inEnd - _inStart);
            _inEnd -= _inStart;
            _inStart = 0;
        }
    }

    private ReadOnlySpan<byte> Input => new(_in + _inStart, _inEnd - _inStart);

    private void Consume(int n) => _inStart += n;

    /// <summary>Handles every complete message in the input buffer (stops when blocked or waiting for bytes).</summary>
    private void Parse()
    {
        try
        {
            while (_phase != Phase.Closed && !_blocked && !_disconnecting && _payloadSlot == null)
            {
                if (_discard > 0)
                {
                    int n = (int)Math.Min(_discard, (ulong)Input.Length);
                    if (n == 0) return;
                    Consume(n);
                    _discard -= (ulong)n;
                    continue;
                }
                switch (_phase)
                {
                    case Phase.ClientFlags:
                        if (Input.Length < NbdHandshake.ClientFlagsSize) return;
                        _negotiation.AcceptClientFlags(Input);
                        Consume(NbdHandshake.ClientFlagsSize);
                        _phase = Phase.Options;
                        break;
                    case Phase.Options:
                        if (!ParseOption()) return;
                        break;
                    case Phase.Transmission:
                        if (!ParseRequest()) return;
                        break;
                }
            }
        }
        catch (NbdProtocolException e)
        {
            Close($"protocol violation: {e.Message}");
        }
    }

    private bool ParseOption()
    {
        if (_optionSkip > 0)
        {
            int n = (int)Math.Min(_optionSkip, (uint)Input.Length);
            if (n == 0) return false;
            Consume(n);
            _optionSkip -= (uint)n;
            return true;
        }
        if (!NbdOptionHeader.TryRead(Input, out var header)) return false;
        if (UnsentHandshakeBytes > MaxUnsentHandshakeBytes)
        {
            // A client that sends options without reading the replies: stop reading it until they drain.
            Block();
            return false;
        }
        if (header.Length > NbdNegotiation.MaxOptionLength)
        {
            Consume(NbdOptionHeader.Size);
            _optionSkip = header.Length;
            _negotiation.RefuseTooBig(header.Option, header.Length);
            TrySend();
            return true;
        }
        if (Input.Length < NbdOptionHeader.Size + header.Length) return false;
        var outcome = _negotiation.Handle(header.Option, Input.Slice(NbdOptionHeader.Size, (int)header.Length));
        Consume(NbdOptionHeader.Size + (int)header.Length);
        switch (outcome)
        {
            case NbdNegotiationOutcome.Transmission:
                _phase = Phase.Transmission;
                _structured = _negotiation.StructuredReplies;
                break;
            case NbdNegotiationOutcome.Close:
                _closeAfterFlush = true;
                _disconnecting = true;
                break;
        }
        TrySend();
        return true;
    }

    /// <summary>
    /// Option replies queued but not yet taken by the socket. Past this the connection stops reading
    /// options, so a client that never reads (thousands of LISTs) costs a bounded buffer, not memory
    /// without limit; the pump resumes it once the replies have drained.
    /// </summary>
    public const int MaxUnsentHandshakeBytes = 64 * 1024;

    /// <summary>Option replies written but not yet sent (what the backpressure test checks).</summary>
    public int UnsentHandshakeBytes => _negotiation.Output.WrittenCount - _handshakeSent;

    private bool ParseRequest()
    {
        if (Input.Length < NbdRequest.Size) return false;
        if (_inFlight >= MaxRequestsInFlight || (_inFlight > 0 && _bytesInFlight >= MaxBytesInFlight))
        {
            Block();
            return false;
        }
        NbdRequest.TryRead(Input, out var request);
        Consume(NbdRequest.Size);
        Handle(request);
        return true;
    }

    /// <summary>Stops reading the socket until replies free capacity (the pump resumes it).</summary>
    private void Block()
    {
        _blocked = true;
        _loop.Mask(_readEvent, true);
    }

    // ============================== requests ==============================

    private void Handle(in NbdRequest request)
    {
        if (request.Command == NbdCommand.Disconnect)
        {
            // proto.md: finish outstanding requests, then close; DISC has no reply.
            _disconnecting = true;
            _loop.Mask(_readEvent, true);
            CloseIfDrained();
            return;
        }
        var slot = RentSlot(request);
        var (error, message) = Validate(request);
        if (error != 0)
        {
            if (request.Command == NbdCommand.Write)
                _discard = request.Length; // the payload still arrives and must be skipped
            Fail(slot, error, message!);
            return;
        }
        switch (request.Command)
        {
            case NbdCommand.Read:
            case NbdCommand.Write:
                if (request.Length == 0) { Finish(slot); return; }
                if (request.Command == NbdCommand.Read && IsHole(request))
                {
                    slot.Hole = true;
                    Finish(slot);
                    return;
                }
                slot.Data = _server.Buffers.Rent((int)request.Length);
                _bytesInFlight += request.Length;
                slot.NextOffset = request.Offset;
                slot.EndOffset = request.Offset + request.Length;
                slot.FlushPending = request.Command == NbdCommand.Write && (request.Flags & NbdCommandFlags.Fua) != 0;
                if (request.Command == NbdCommand.Write)
                {
                    int have = Math.Min(Input.Length, (int)request.Length);
                    Input[..have].CopyTo(slot.Data.Span);
                    Consume(have);
                    slot.Received = have;
                    if (have < (int)request.Length)
                    {
                        _payloadSlot = slot;
                        return;
                    }
                }
                Start(slot);
                return;
            case NbdCommand.WriteZeroes:
                if (request.Length == 0) { Finish(slot); return; }
                slot.NextOffset = request.Offset;
                slot.EndOffset = request.Offset + request.Length;
                slot.FlushPending = (request.Flags & NbdCommandFlags.Fua) != 0;
                Start(slot);
                return;
            case NbdCommand.Flush:
                slot.FlushPending = true;
                Start(slot);
                return;
            case NbdCommand.Trim:
            case NbdCommand.Cache:
                // Both are hints (proto.md: the server MAY discard / MAY ignore); nothing is written, so
                // FUA has nothing to persist.
                Finish(slot);
                return;
            case NbdCommand.BlockStatus:
                BlockStatus(slot);
                return;
        }
    }

    /// <summary>
    /// A structured READ of a range no image of the chain holds (a sparse VHD's unwritten blocks) is
    /// answered with one OFFSET_HOLE chunk at once, as qemu-nbd does: no zero-filling, no 1 MiB of zeroes
    /// on the socket. Only from in-memory maps (a bitmap not yet read, or a raw file, reads normally),
    /// and only while the VBD is ready — paused or closing, its chain may be about to change.
    /// </summary>
    private bool IsHole(in NbdRequest r) =>
        _structured && _vbd.IsReady && _vbd.Chain is { } chain
        && ImageChainAllocation.TryQueryMapped(chain.Leaf, r.Offset / 512, r.Length / 512, out var run)
        && !run.Allocated && run.Sectors == r.Length / 512;

    private (int Error, string? Message) Validate(in NbdRequest r)
    {
        var allowed = NbdCommandFlags.Fua;
        switch (r.Command)
        {
            case NbdCommand.Read:
                if (_structured) allowed |= NbdCommandFlags.DontFragment;
                break;
            case NbdCommand.Write or NbdCommand.Flush or NbdCommand.Trim or NbdCommand.Cache:
                break;
            case NbdCommand.WriteZeroes:
                allowed |= NbdCommandFlags.NoHole;
                break;
            case NbdCommand.BlockStatus:
                allowed |= NbdCommandFlags.RequestOne;
                break;
            default:
                return (-Errno.EINVAL, $"command {(ushort)r.Command} is not supported");
        }
        if ((r.Flags & ~allowed) != 0)
            return (-Errno.EINVAL, $"command flags 0x{(ushort)r.Flags:x4} are not valid for {r.Command}");
        bool writes = r.Command is NbdCommand.Write or NbdCommand.Trim or NbdCommand.WriteZeroes;
        if (writes && _export.ReadOnly)
            return (-Errno.EPERM, "the export is read-only");
        if (r.Command == NbdCommand.Flush)
            return (0, null);
        if (r.Command == NbdCommand.BlockStatus && !_negotiation.BaseAllocationSelected)
            return (-Errno.EINVAL, "BLOCK_STATUS needs the base:allocation meta context selected");
        ulong size = _export.SizeBytes;
        // proto.md: ENOSPC for a write beyond the end, EINVAL for a read or trim (a trim writes nothing).
        if (r.Offset > size || r.Length > size - r.Offset)
            return (r.Command is NbdCommand.Write or NbdCommand.WriteZeroes ? -Errno.ENOSPC : -Errno.EINVAL,
                $"range {r.Offset}+{r.Length} reaches beyond the export's {size} bytes");
        if (r.Command is NbdCommand.Read or NbdCommand.Write && r.Length > NbdExport.MaximumPayload)
            return (-Errno.EINVAL, $"length {r.Length} exceeds the maximum payload {NbdExport.MaximumPayload}");
        if (r.Command is NbdCommand.Read or NbdCommand.Write or NbdCommand.WriteZeroes
            && ((r.Offset | r.Length) & (NbdExport.MinimumBlockSize - 1)) != 0)
            return (-Errno.EINVAL, $"range {r.Offset}+{r.Length} is not aligned to {NbdExport.MinimumBlockSize} bytes");
        if (r.Command == NbdCommand.BlockStatus && r.Length == 0)
            return (-Errno.EINVAL, "BLOCK_STATUS of length 0");
        return (0, null);
    }

    private NbdRequestSlot RentSlot(in NbdRequest request)
    {
        if (!_freeSlots.TryPop(out var slot))
            slot = new NbdRequestSlot();
        slot.Reset();
        slot.Request = request;
        _inFlight++;
        return slot;
    }

    /// <summary>Submits what the slot still needs; a slot the VBD has no request for waits for the pump.</summary>
    private void Start(NbdRequestSlot slot)
    {
        if (!Continue(slot))
        {
            _waiting.Enqueue(slot);
            Block();
        }
    }

    /// <summary>
    /// Submits the slot's remaining parts: its data (one VBD request for READ/WRITE, 11-MiB pieces of
    /// the shared zero page run for WRITE_ZEROES), then — once they all succeeded — the flush for FLUSH
    /// or FUA. Returns false when the VBD had no free request.
    /// </summary>
    private bool Continue(NbdRequestSlot slot)
    {
        var command = slot.Request.Command;
        while (slot.NextOffset < slot.EndOffset)
        {
            var v = _vbd.TryRentRequest(this);
            if (v == null) return false;
            v.Tag = slot.Request.Cookie;
            v.FrontendState = slot;
            v.Sector = slot.NextOffset / 512;
            if (command == NbdCommand.WriteZeroes)
            {
                v.Operation = VbdOperation.Write;
                var zeroes = _server.ZeroBuffer;
                for (int i = 0; i < VbdRequest.MaxSegments && slot.NextOffset < slot.EndOffset; i++)
                {
                    int bytes = (int)Math.Min((ulong)zeroes.Length, slot.EndOffset - slot.NextOffset);
                    v.AddSegment(zeroes.Pointer, bytes / 512);
                    slot.NextOffset += (ulong)bytes;
                }
            }
            else
            {
                v.Operation = command == NbdCommand.Write ? VbdOperation.Write : VbdOperation.Read;
                v.AddSegment(slot.Data!.Pointer, (int)(slot.EndOffset - slot.NextOffset) / 512);
                slot.NextOffset = slot.EndOffset;
            }
            Submit(slot, v);
        }
        if (slot.PartsOutstanding > 0)
            return true;
        if (slot.FlushPending && !slot.FlushSubmitted && slot.Error == 0)
        {
            var v = _vbd.TryRentRequest(this);
            if (v == null) return false;
            v.Operation = VbdOperation.Flush;
            v.Tag = slot.Request.Cookie;
            v.FrontendState = slot;
            slot.FlushSubmitted = true;
            Submit(slot, v);
            return true;
        }
        Finish(slot);
        return true;
    }

    private void Submit(NbdRequestSlot slot, VbdRequest v)
    {
        slot.PartsOutstanding++;
        _vbd.Submit(v);
        _submitted = true;
    }

    /// <summary>After a batch of input: let the VBD issue what was submitted, and send what is finished.</summary>
    private void EndBatch()
    {
        if (_submitted)
        {
            _submitted = false;
            _vbd.ProcessSubmitted();
        }
        TrySend();
    }

    public void OnRequestCompleted(VbdRequest request)
    {
        var slot = (NbdRequestSlot)request.FrontendState!;
        slot.PartsOutstanding--;
        if (request.Error != 0 && slot.Error == 0)
            slot.Error = request.Error;
        if (slot.PartsOutstanding > 0)
            return;
        if (_phase == Phase.Closed)
        {
            Release(slot);
            if (_vbd.OutstandingRequests(this) <= 1) _loop.Mask(_pumpEvent, false); // this one is released after we return
            return;
        }
        bool more = slot.Error == 0 && (slot.NextOffset < slot.EndOffset || (slot.FlushPending && !slot.FlushSubmitted));
        if (more)
        {
            // Submitting from inside the VBD's kick would leave the I/O unsubmitted until the next wake-up:
            // continue on the next pass instead.
            _waiting.Enqueue(slot);
            _loop.Mask(_pumpEvent, false);
            return;
        }
        Finish(slot);
    }

    public void OnResponsesReady()
    {
        TrySend();
        if (_blocked || !_waiting.IsEmpty)
            _loop.Mask(_pumpEvent, false);
        // VBD requests were freed: a connection of this server waiting for one may go on.
        _server.WakeWaiting();
    }

    /// <summary>Continue on the next pass if this connection waits for a free VBD request.</summary>
    internal void WakeIfWaiting()
    {
        if (!_waiting.IsEmpty && _phase != Phase.Closed)
            _loop.Mask(_pumpEvent, false);
    }

    public void OnVbdClosed() => Close("the VBD closed");

    private void Pump()
    {
        _loop.Mask(_pumpEvent, true);
        if (_phase == Phase.Closed)
        {
            FreeIfIdle();
            return;
        }
        while (_waiting.Head is { } slot)
        {
            if (!Continue(slot)) break;
            _waiting.Dequeue();
        }
        if (_waiting.IsEmpty && _blocked && !_disconnecting && _inFlight < MaxRequestsInFlight
            && (_inFlight == 0 || _bytesInFlight < MaxBytesInFlight) && UnsentHandshakeBytes <= MaxUnsentHandshakeBytes)
        {
            _blocked = false;
            _loop.Mask(_readEvent, false);
            Parse();
        }
        EndBatch();
    }

    // ============================== replies ==============================

    private void Fail(NbdRequestSlot slot, int error, string message)
    {
        slot.Error = error;
        Finish(slot, message);
    }

    /// <summary>Writes the slot's reply header and queues it for sending.</summary>
    private void Finish(NbdRequestSlot slot, string? message = null)
    {
        ref readonly var r = ref slot.Request;
        var header = slot.HeaderSpan;
        if (slot.Error != 0)
        {
            var error = NbdErrors.FromErrno(slot.Error);
            if (_structured)
            {
                message ??= $"{r.Command} {r.Offset}+{r.Length} failed: {Errno.Name(slot.Error)}";
                if (message.Length > 120) message = message[..120];
                slot.HeaderLength = NbdStructuredReply.WriteError(header, r.Cookie, error, message);
            }
            else
            {
                new NbdSimpleReply(error, r.Cookie).WriteTo(header);
                slot.HeaderLength = NbdSimpleReply.Size;
            }
            slot.ReplyDataLength = 0;
        }
        else if (slot.Hole)
        {
            slot.HeaderLength = NbdStructuredReply.WriteOffsetHole(header, NbdReplyFlags.Done, r.Cookie, r.Offset, r.Length);
        }
        else if (r.Command == NbdCommand.Read && r.Length > 0)
        {
            if (_structured)
                slot.HeaderLength = NbdStructuredReply.WriteOffsetDataHeader(header, NbdReplyFlags.Done, r.Cookie, r.Offset, r.Length);
            else
            {
                new NbdSimpleReply(NbdError.None, r.Cookie).WriteTo(header);
                slot.HeaderLength = NbdSimpleReply.Size;
            }
            slot.ReplyDataLength = (int)r.Length;
        }
        else if (r.Command == NbdCommand.Read && _structured)
        {
            slot.HeaderLength = NbdStructuredReply.WriteNone(header, r.Cookie);
        }
        else if (r.Command != NbdCommand.BlockStatus)
        {
            // proto.md allows a simple reply to anything but READ when there is no payload.
            new NbdSimpleReply(NbdError.None, r.Cookie).WriteTo(header);
            slot.HeaderLength = NbdSimpleReply.Size;
        }
        RequestsServed++;
        _sending.Enqueue(slot);
    }

    /// <summary>BLOCK_STATUS for base:allocation: the chain's allocation, answered at once (no I/O).</summary>
    private void BlockStatus(NbdRequestSlot slot)
    {
        ref readonly var r = ref slot.Request;
        var chain = _vbd.Chain;
        if (chain == null)
        {
            Fail(slot, -Errno.EIO, "the image is not open");
            return;
        }
        int max = (r.Flags & NbdCommandFlags.RequestOne) != 0 ? 1 : MaxDescriptors;
        var data = _server.Buffers.Rent(NbdStructuredReply.BlockStatusHeaderSize + max * NbdBlockDescriptor.Size);
        slot.Data = data;
        var all = _descriptors.AsSpan(0, max);
        int count = 0;
        const uint maxLength = uint.MaxValue & ~511u;
        ulong offset = r.Offset, end = r.Offset + r.Length;
        while (offset < end && count < max)
        {
            ulong sector = offset / 512;
            ulong sectorsLeft = (end - sector * 512 + 511) / 512;
            var run = ImageChainAllocation.Query(chain.Leaf, sector, Math.Min(sectorsLeft, 1UL << 22));
            ulong runEnd = Math.Min(end, (sector + run.Sectors) * 512);
            uint flags = run.Allocated ? (uint)NbdAllocationFlags.Data : (uint)(NbdAllocationFlags.Hole | NbdAllocationFlags.Zero);
            uint length = (uint)Math.Min(runEnd - offset, maxLength);
            if (count > 0 && all[count - 1].Flags == flags && (ulong)all[count - 1].Length + length <= maxLength)
                all[count - 1] = new NbdBlockDescriptor(all[count - 1].Length + length, flags);
            else
                all[count++] = new NbdBlockDescriptor(length, flags);
            offset += length;
        }
        slot.HeaderLength = 0;
        slot.ReplyDataLength = NbdStructuredReply.WriteBlockStatus(data.Span, NbdReplyFlags.Done, r.Cookie,
            NbdNegotiation.BaseAllocationContextId, all[..count]);
        RequestsServed++;
        _sending.Enqueue(slot);
    }

    // ============================== output ==============================

    /// <summary>Sends handshake bytes and finished replies until done or the socket is full.</summary>
    private void TrySend()
    {
        if (_phase == Phase.Closed) return;
        while (true)
        {
            var handshake = _negotiation.Output;
            if (_handshakeSent < handshake.WrittenCount)
            {
                nint n;
                fixed (byte* p = handshake.WrittenSpan)
                    n = LibC.send(_fd, p + _handshakeSent, handshake.WrittenCount - _handshakeSent, LibC.MSG_DONTWAIT | LibC.MSG_NOSIGNAL);
                if (!Sent(n)) return;
                _handshakeSent += (int)n;
                if (_handshakeSent == handshake.WrittenCount)
                {
                    handshake.ResetWrittenCount();
                    _handshakeSent = 0;
                    if (_blocked) _loop.Mask(_pumpEvent, false); // options held back by MaxUnsentHandshakeBytes
                }
                continue;
            }
            if (_sending.IsEmpty) break;
            int iov = 0;
            int skip = _sendOffset;
            for (var s = _sending.Head; s != null && iov < MaxIov - 1; s = s.Next)
            {
                if (skip < s.HeaderLength)
                {
                    _iov[iov].Base = s.Header + skip;
                    _iov[iov++].Length = (nuint)(s.HeaderLength - skip);
                    skip = 0;
                }
                else skip -= s.HeaderLength;
                if (s.ReplyDataLength > skip)
                {
                    _iov[iov].Base = (byte*)s.Data!.Pointer + skip;
                    _iov[iov++].Length = (nuint)(s.ReplyDataLength - skip);
                }
                skip = 0;
            }
            var msg = new MsgHdr { Iov = _iov, IovLength = (nuint)iov };
            nint sent = LibC.sendmsg(_fd, &msg, LibC.MSG_DONTWAIT | LibC.MSG_NOSIGNAL);
            if (!Sent(sent)) return;
            long left = sent + _sendOffset;
            while (_sending.Head is { } head && left >= head.ReplyLength)
            {
                left -= head.ReplyLength;
                _sending.Dequeue();
                Release(head);
            }
            _sendOffset = (int)left;
        }
        _loop.Mask(_writeEvent, true);
        if (_closeAfterFlush)
            Close("client aborted the negotiation");
        else
            CloseIfDrained();
    }

    /// <summary>False when nothing more can be sent now (socket full: wait for writability; or failed: closed).</summary>
    private bool Sent(nint n)
    {
        if (n >= 0) return true;
        int errno = LibC.LastErrno;
        if (errno == Errno.EAGAIN || errno == Errno.EINTR)
        {
            _loop.Mask(_writeEvent, false);
            return false;
        }
        Close($"send failed: {Errno.Name(errno)}");
        return false;
    }

    private void Release(NbdRequestSlot slot)
    {
        if (slot.Data != null)
        {
            if (slot.Request.Command is NbdCommand.Read or NbdCommand.Write)
                _bytesInFlight -= slot.Request.Length;
            _server.Buffers.Return(slot.Data);
        }
        slot.Reset();
        _freeSlots.Push(slot);
        _inFlight--;
        if (_blocked && _phase != Phase.Closed)
            _loop.Mask(_pumpEvent, false);
    }

    private void CloseIfDrained()
    {
        if (_disconnecting && !_closeAfterFlush && _inFlight == 0 && _sending.IsEmpty && _phase != Phase.Closed)
            Close("client disconnected");
    }

    // ============================== closing ==============================

    /// <summary>
    /// Ends the session. Requests already with the VBD still complete (their data must not be written
    /// half-way); their buffers stay alive until then, and the connection leaves the VBD after the last one.
    /// </summary>
    public void Close(string reason)
    {
        if (_phase == Phase.Closed) return;
        _phase = Phase.Closed;
        CloseReason = reason;
        _loop.Unregister(_readEvent);
        _loop.Unregister(_writeEvent);
        try { _socket.Dispose(); } catch (SocketException) { }
        while (_sending.Dequeue() is { } s) Release(s);
        while (_waiting.Dequeue() is { } s)
            if (s.PartsOutstanding == 0) Release(s);
        if (_payloadSlot != null) { Release(_payloadSlot); _payloadSlot = null; }
        _server.OnConnectionClosed(this);
        _loop.Mask(_pumpEvent, false);
    }

    private void FreeIfIdle()
    {
        if (_freed || _vbd.OutstandingRequests(this) > 0) return;
        _freed = true;
        _vbd.Detach(this);
        _loop.Unregister(_pumpEvent);
        while (_freeSlots.TryPop(out var s)) s.Dispose();
        NativeMemory.AlignedFree(_in);
        NativeMemory.Free(_iov);
    }
}
