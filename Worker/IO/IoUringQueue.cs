using System.Runtime.InteropServices;
using BlkTapCtrl.Worker.Interop;
using BlkTapCtrl.Worker.Scheduling;

namespace BlkTapCtrl.Worker.IO;

/// <summary>
/// An io_uring backend (Linux 5.6+; our addition to blktap's lio and rwio). Unlike native AIO, which only
/// stays asynchronous with O_DIRECT and blocks the loop in io_submit on the page cache, io_uring completes
/// buffered reads and writes asynchronously too (the kernel hands what would block to its own workers), and
/// it runs fdatasync asynchronously as well. Completions are signalled through an eventfd registered both
/// with the ring and as a READ event in the loop, exactly like lio. The rings are mapped once at start and
/// every request reuses a fixed slot, so submitting allocates nothing. Short transfers are resubmitted for
/// the rest (a buffered read may stop early); only a transfer that makes no progress ends short (⇒ −EIO).
/// </summary>
public sealed unsafe class IoUringQueue : IoQueue
{
    private const long SysIoUringSetup = 425, SysIoUringEnter = 426, SysIoUringRegister = 427;
    private const uint RegisterEventFd = 4, FeatureSingleMmap = 1, EnterGetEvents = 1;
    private const long OffsetSqRing = 0, OffsetCqRing = 0x8000000, OffsetSqes = 0x10000000;
    private const byte OpFsync = 3, OpRead = 22, OpWrite = 23;
    private const uint FsyncDataSync = 1;

    [StructLayout(LayoutKind.Sequential)]
    private struct SqRingOffsets { public uint Head, Tail, RingMask, RingEntries, Flags, Dropped, Array, Resv1; public ulong UserAddr; }

    [StructLayout(LayoutKind.Sequential)]
    private struct CqRingOffsets { public uint Head, Tail, RingMask, RingEntries, Overflow, Cqes, Flags, Resv1; public ulong UserAddr; }

    [StructLayout(LayoutKind.Sequential)]
    private struct Params
    {
        public uint SqEntries, CqEntries, Flags, SqThreadCpu, SqThreadIdle, Features, WqFd, Resv0, Resv1, Resv2;
        public SqRingOffsets SqOff;
        public CqRingOffsets CqOff;
    }

    [StructLayout(LayoutKind.Explicit, Size = 64)]
    private struct Sqe
    {
        [FieldOffset(0)] public byte Opcode;
        [FieldOffset(1)] public byte Flags;
        [FieldOffset(2)] public ushort IoPrio;
        [FieldOffset(4)] public int Fd;
        [FieldOffset(8)] public ulong Offset;
        [FieldOffset(16)] public ulong Address;
        [FieldOffset(24)] public uint Length;
        [FieldOffset(28)] public uint OpFlags;
        [FieldOffset(32)] public ulong UserData;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Cqe { public ulong UserData; public int Result; public uint Flags; }

    private readonly EventLoop _loop;
    private readonly int _ringFd;
    private readonly int _eventFd;
    private readonly int _eventId;
    private readonly nint _sqRing, _cqRing, _sqesMap;
    private readonly nuint _sqRingSize, _cqRingSize, _sqesSize;
    private readonly uint* _sqHead, _sqTail, _sqArray, _cqHead, _cqTail;
    private readonly uint _sqMask, _cqMask, _sqEntries;
    private readonly Sqe* _sqes;
    private readonly Cqe* _cqes;
    private readonly IoRequest?[] _slots;
    private readonly long[] _done; // bytes already moved per slot (short transfers continue)
    private readonly int[] _freeSlots;
    private int _freeCount;
    private uint _unsubmitted; // SQEs queued in the ring that the kernel has not taken yet
    private bool _disposed;

    public IoUringQueue(EventLoop loop, int capacity) : base(capacity)
    {
        var p = default(Params);
        uint entries = (uint)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(capacity, 2));
        long fd = LibC.syscall(SysIoUringSetup, (nint)entries, (nint)(&p), 0, 0, 0);
        if (fd < 0)
            throw new IOException($"io_uring_setup({entries}) failed: {Errno.Name(LibC.LastErrno)}");
        _ringFd = (int)fd;
        _eventFd = -1;
        try
        {
            _sqEntries = p.SqEntries;
            _sqRingSize = p.SqOff.Array + p.SqEntries * sizeof(uint);
            _cqRingSize = p.CqOff.Cqes + p.CqEntries * (uint)sizeof(Cqe);
            bool single = (p.Features & FeatureSingleMmap) != 0;
            if (single) _sqRingSize = _cqRingSize = Math.Max(_sqRingSize, _cqRingSize);
            _sqRing = Map(_sqRingSize, OffsetSqRing);
            _cqRing = single ? _sqRing : Map(_cqRingSize, OffsetCqRing);
            _sqesSize = p.SqEntries * (uint)sizeof(Sqe);
            _sqesMap = Map(_sqesSize, OffsetSqes);

            byte* sq = (byte*)_sqRing, cq = (byte*)_cqRing;
            _sqHead = (uint*)(sq + p.SqOff.Head);
            _sqTail = (uint*)(sq + p.SqOff.Tail);
            _sqMask = *(uint*)(sq + p.SqOff.RingMask);
            _sqArray = (uint*)(sq + p.SqOff.Array);
            _cqHead = (uint*)(cq + p.CqOff.Head);
            _cqTail = (uint*)(cq + p.CqOff.Tail);
            _cqMask = *(uint*)(cq + p.CqOff.RingMask);
            _cqes = (Cqe*)(cq + p.CqOff.Cqes);
            _sqes = (Sqe*)_sqesMap;

            _eventFd = LibC.eventfd(0, LibC.EFD_NONBLOCK | LibC.EFD_CLOEXEC);
            if (_eventFd < 0)
                throw new IOException($"eventfd failed: {Errno.Name(LibC.LastErrno)}");
            int efd = _eventFd;
            if (LibC.syscall(SysIoUringRegister, _ringFd, (nint)RegisterEventFd, (nint)(&efd), 1, 0) < 0)
                throw new IOException($"io_uring_register(EVENTFD) failed: {Errno.Name(LibC.LastErrno)}");
        }
        catch
        {
            Release();
            throw;
        }
        _loop = loop;
        _slots = new IoRequest?[capacity];
        _done = new long[capacity];
        _freeSlots = new int[capacity];
        for (int i = 0; i < capacity; i++) _freeSlots[i] = capacity - 1 - i;
        _freeCount = capacity;
        _eventId = loop.Register(EventMode.Read, _eventFd, 0, static (_, _, state) => ((IoUringQueue)state!).OnEventFd(), this);
    }

    /// <summary>True when this kernel lets us create a ring (not disabled by sysctl or seccomp).</summary>
    public static bool IsSupported()
    {
        var p = default(Params);
        long fd = LibC.syscall(SysIoUringSetup, 2, (nint)(&p), 0, 0, 0);
        if (fd < 0) return false;
        LibC.close((int)fd);
        return true;
    }

    public override string Name => "uring";

    /// <summary>The completion eventfd (shown as "aio" in the wake-up ring index).</summary>
    public int EventFd => _eventFd;

    private nint Map(nuint size, long offset)
    {
        nint address = LibC.mmap(0, size, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED | LibC.MAP_POPULATE, _ringFd, offset);
        if (address == LibC.MAP_FAILED)
            throw new IOException($"mmap of the io_uring ring at 0x{offset:x} failed: {Errno.Name(LibC.LastErrno)}");
        return address;
    }

    protected override void SubmitMerged(ref IoRequestList heads)
    {
        while (heads.Take() is { } head)
        {
            int slot = _freeSlots[--_freeCount];
            _slots[slot] = head;
            _done[slot] = 0;
            Push(slot);
        }
        Enter();
    }

    /// <summary>Writes the SQE for the rest of the slot's transfer into the ring (not yet handed to the kernel).</summary>
    private void Push(int slot)
    {
        var head = _slots[slot]!;
        long done = _done[slot];
        uint tail = *_sqTail; // only we write the tail
        uint index = tail & _sqMask;
        var sqe = &_sqes[index];
        *sqe = default;
        sqe->Fd = head.Fd;
        sqe->UserData = (ulong)slot;
        if (head.Operation == IoOperation.FlushData)
        {
            sqe->Opcode = OpFsync;
            sqe->OpFlags = FsyncDataSync;
        }
        else
        {
            sqe->Opcode = head.Operation == IoOperation.Read ? OpRead : OpWrite;
            sqe->Address = (ulong)(head.Buffer + (nint)done);
            sqe->Length = (uint)(head.MergedLength - done);
            sqe->Offset = (ulong)(head.Offset + done);
        }
        _sqArray[index] = index;
        Volatile.Write(ref *_sqTail, tail + 1); // release: the SQE is complete before the kernel sees the tail
        _unsubmitted++;
    }

    private void Enter()
    {
        while (_unsubmitted > 0)
        {
            long rc = LibC.syscall(SysIoUringEnter, _ringFd, (nint)_unsubmitted, 0, 0, 0);
            if (rc > 0)
            {
                _unsubmitted -= (uint)rc;
                continue;
            }
            int errno = rc < 0 ? LibC.LastErrno : Errno.EAGAIN;
            if (errno == Errno.EINTR) continue;
            // EAGAIN/EBUSY: the kernel is short of resources or completions must be reaped first; the SQEs
            // stay in the ring and go in with the next submission or completion batch.
            return;
        }
    }

    private void OnEventFd()
    {
        ulong counter;
        LibC.read(_eventFd, &counter, sizeof(ulong));
        bool resubmitted = false;
        while (true)
        {
            uint head = *_cqHead;
            uint tail = Volatile.Read(ref *_cqTail); // acquire: CQE contents are visible
            if (head == tail) break;
            while (head != tail)
            {
                var cqe = _cqes[head & _cqMask];
                head++;
                Volatile.Write(ref *_cqHead, head);
                resubmitted |= Completed((int)cqe.UserData, cqe.Result);
            }
        }
        if (resubmitted || _unsubmitted > 0) Enter();
        Refill();
    }

    /// <summary>Handles one CQE; true when the rest of a short transfer was queued again.</summary>
    private bool Completed(int slot, int result)
    {
        var request = _slots[slot] ?? throw new InvalidOperationException($"io_uring completion for free slot {slot}");
        if (request.Operation != IoOperation.FlushData && result > 0)
        {
            _done[slot] += result;
            if (_done[slot] < request.MergedLength)
            {
                Push(slot);
                return true;
            }
        }
        _slots[slot] = null;
        _freeSlots[_freeCount++] = slot;
        long outcome = result < 0 ? result
            : request.Operation == IoOperation.FlushData ? request.MergedLength
            : _done[slot];
        CompleteMerged(request, outcome);
        return false;
    }

    /// <summary>
    /// Closing a ring does not wait for its I/O, which may still write into buffers the caller frees next:
    /// wait for every outstanding completion (results dropped — the owners are being torn down too).
    /// </summary>
    private void WaitForInFlight()
    {
        int busy = _slots.Length - _freeCount;
        Enter();
        while (busy > 0)
        {
            long rc = LibC.syscall(SysIoUringEnter, _ringFd, 0, 1, (nint)EnterGetEvents, 0);
            if (rc < 0 && LibC.LastErrno != Errno.EINTR) return;
            uint head = *_cqHead, tail = Volatile.Read(ref *_cqTail);
            for (; head != tail; head++)
            {
                int slot = (int)_cqes[head & _cqMask].UserData;
                if (_slots[slot] == null) continue;
                _slots[slot] = null;
                _freeSlots[_freeCount++] = slot;
                busy--;
            }
            Volatile.Write(ref *_cqHead, head);
        }
    }

    private void Release()
    {
        if (_sqesMap != 0 && _sqesMap != LibC.MAP_FAILED) LibC.munmap(_sqesMap, _sqesSize);
        if (_cqRing != 0 && _cqRing != _sqRing && _cqRing != LibC.MAP_FAILED) LibC.munmap(_cqRing, _cqRingSize);
        if (_sqRing != 0 && _sqRing != LibC.MAP_FAILED) LibC.munmap(_sqRing, _sqRingSize);
        if (_eventFd >= 0) LibC.close(_eventFd);
        LibC.close(_ringFd);
    }

    public override void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _loop.Unregister(_eventId);
        WaitForInFlight();
        Release();
        base.Dispose();
    }
}
