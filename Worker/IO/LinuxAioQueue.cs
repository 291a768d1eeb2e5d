using System.Runtime.InteropServices;
using BlkTapCtrl.Worker.Interop;
using BlkTapCtrl.Worker.Logging;
using BlkTapCtrl.Worker.Scheduling;

namespace BlkTapCtrl.Worker.IO;

/// <summary>
/// blktap's lio backend: Linux native AIO (io_setup/io_submit/io_getevents as raw syscalls), with
/// completions signalled through an eventfd registered as a READ event in the loop (CA-36385).
/// Native iocbs live in one unmanaged array allocated at start, so submitting allocates nothing.
/// Flushes are done synchronously (fdatasync): not every filesystem accepts an AIO fdsync.
/// </summary>
public sealed unsafe class LinuxAioQueue : IoQueue
{
    private const long SysIoSetup = 206, SysIoDestroy = 207, SysIoGetEvents = 208, SysIoSubmit = 209;
    private const ushort IocbCmdPread = 0, IocbCmdPwrite = 1;
    private const uint IocbFlagResfd = 1;

    [StructLayout(LayoutKind.Sequential)]
    private struct Iocb
    {
        public ulong Data;
        public uint Key;
        public int RwFlags;
        public ushort Opcode;
        public short ReqPrio;
        public uint Fd;
        public ulong Buf;
        public ulong NBytes;
        public long Offset;
        public ulong Reserved2;
        public uint Flags;
        public uint ResFd;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct IoEvent
    {
        public ulong Data;
        public ulong Obj;
        public long Res;
        public long Res2;
    }

    private readonly EventLoop _loop;
    private readonly nint _context;
    private readonly int _eventFd;
    private readonly int _eventId;
    private readonly Iocb* _iocbs;
    private readonly Iocb** _submitList;
    private readonly IoEvent* _events;
    private readonly IoRequest?[] _slots;
    private readonly int[] _freeSlots;
    private int _freeCount;
    private bool _disposed;

    public LinuxAioQueue(EventLoop loop, int capacity, WorkerLog log) : base(capacity)
    {
        string release = KernelRelease.Current();
        if (!KernelRelease.PrefersEventfd(release))
            throw new IOException($"kernel '{release}' predates eventfd AIO notification (2.6.22); the legacy poll-fd patch is not supported");
        nint ctx = 0;
        if (LibC.syscall(SysIoSetup, capacity, (nint)(&ctx), 0, 0, 0) < 0)
        {
            int errno = LibC.LastErrno;
            if (errno == Errno.EAGAIN)
                log.Warn("tapdisk_lio_setup", "io_setup: EAGAIN; raise /proc/sys/fs/aio-max-nr (e.g. to 1048576)");
            throw new IOException($"io_setup({capacity}) failed: {Errno.Name(errno)}");
        }
        _context = ctx;
        _eventFd = LibC.eventfd(0, LibC.EFD_NONBLOCK | LibC.EFD_CLOEXEC);
        if (_eventFd < 0)
        {
            LibC.syscall(SysIoDestroy, _context, 0, 0, 0, 0);
            throw new IOException($"eventfd failed: {Errno.Name(LibC.LastErrno)}");
        }
        _loop = loop;
        _iocbs = (Iocb*)NativeMemory.AllocZeroed((nuint)(capacity * sizeof(Iocb)));
        _submitList = (Iocb**)NativeMemory.AllocZeroed((nuint)(capacity * sizeof(Iocb*)));
        _events = (IoEvent*)NativeMemory.AllocZeroed((nuint)(capacity * sizeof(IoEvent)));
        _slots = new IoRequest?[capacity];
        _freeSlots = new int[capacity];
        for (int i = 0; i < capacity; i++) _freeSlots[i] = capacity - 1 - i;
        _freeCount = capacity;
        _eventId = loop.Register(EventMode.Read, _eventFd, 0, static (_, _, state) => ((LinuxAioQueue)state!).OnEventFd(), this);
    }

    public override string Name => "lio";

    /// <summary>The completion eventfd (shown as "aio" in the wake-up ring index).</summary>
    public int EventFd => _eventFd;

    protected override void SubmitMerged(ref IoRequestList heads)
    {
        int n = 0;
        while (heads.Take() is { } head)
        {
            if (head.Operation == IoOperation.FlushData)
            {
                CompleteMerged(head, SynchronousIoQueue.Execute(head.Fd, head.Operation, head.Buffer, head.MergedLength, head.Offset));
                continue;
            }
            int slot = _freeSlots[--_freeCount];
            _slots[slot] = head;
            var cb = &_iocbs[slot];
            *cb = default;
            cb->Data = (ulong)slot;
            cb->Opcode = head.Operation == IoOperation.Read ? IocbCmdPread : IocbCmdPwrite;
            cb->Fd = (uint)head.Fd;
            cb->Buf = (ulong)head.Buffer;
            cb->NBytes = (ulong)head.MergedLength;
            cb->Offset = head.Offset;
            cb->Flags = IocbFlagResfd;
            cb->ResFd = (uint)_eventFd;
            _submitList[n++] = cb;
        }
        if (n == 0) return;
        int done = 0;
        while (done < n)
        {
            long rc = LibC.syscall(SysIoSubmit, _context, n - done, (nint)(_submitList + done), 0, 0);
            if (rc > 0)
            {
                done += (int)rc;
                continue;
            }
            int errno = rc < 0 ? LibC.LastErrno : Errno.EIO;
            if (errno == Errno.EINTR) continue;
            // The kernel took none of the rest: EAGAIN means no room (defer, never fail); anything else
            // fails the first one (the one it rejected) and we try the others again.
            if (errno == Errno.EAGAIN)
            {
                for (int k = n - 1; k >= done; k--) Requeue(TakeSlot((int)_submitList[k]->Data));
                return;
            }
            CompleteMerged(TakeSlot((int)_submitList[done]->Data), -errno);
            done++;
        }
    }

    private IoRequest TakeSlot(int slot)
    {
        var head = _slots[slot] ?? throw new InvalidOperationException($"AIO completion for free slot {slot}");
        _slots[slot] = null;
        _freeSlots[_freeCount++] = slot;
        return head;
    }

    private void OnEventFd()
    {
        ulong counter;
        LibC.read(_eventFd, &counter, sizeof(ulong));
        while (true)
        {
            long n = LibC.syscall(SysIoGetEvents, _context, 0, Capacity, (nint)_events, 0);
            if (n < 0 && LibC.LastErrno == Errno.EINTR) continue;
            if (n <= 0) break;
            for (int i = 0; i < n; i++)
            {
                var head = TakeSlot((int)_events[i].Data);
                CompleteMerged(head, _events[i].Res);
            }
            if (n < Capacity) break;
        }
        Refill();
    }

    public override void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _loop.Unregister(_eventId);
        LibC.syscall(SysIoDestroy, _context, 0, 0, 0, 0);
        LibC.close(_eventFd);
        NativeMemory.Free(_iocbs);
        NativeMemory.Free(_submitList);
        NativeMemory.Free(_events);
        base.Dispose();
    }
}
