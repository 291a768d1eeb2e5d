using BlkTapCtrl.Worker.Interop;

namespace BlkTapCtrl.Worker.IO;

/// <summary>
/// blktap's rwio backend: each merged request is done with blocking pread/pwrite during
/// <see cref="IoQueue.Submit"/>, completions inline (CA-36385: the VBD still answers them in the same
/// loop pass because the server kicks after submitting).
/// </summary>
public sealed unsafe class SynchronousIoQueue(int capacity = IoQueue.DefaultCapacity) : IoQueue(capacity)
{
    public override string Name => "rwio";

    protected override void SubmitMerged(ref IoRequestList heads)
    {
        while (heads.Take() is { } head)
            CompleteMerged(head, Execute(head.Fd, head.Operation, head.Buffer, head.MergedLength, head.Offset));
        AfterCompletionBatch();
    }

    /// <summary>Does one I/O fully (looping over partial transfers). Returns bytes moved or −errno.</summary>
    public static long Execute(int fd, IoOperation op, nint buffer, long length, long offset)
    {
        if (op == IoOperation.FlushData)
            return LibC.fdatasync(fd) == 0 ? length : -LibC.LastErrno;
        long done = 0;
        while (done < length)
        {
            nint n = op == IoOperation.Read
                ? LibC.pread(fd, (byte*)buffer + done, (nint)(length - done), offset + done)
                : LibC.pwrite(fd, (byte*)buffer + done, (nint)(length - done), offset + done);
            if (n < 0)
            {
                int errno = LibC.LastErrno;
                if (errno == Errno.EINTR) continue;
                return -errno;
            }
            if (n == 0) break;
            done += n;
        }
        return done;
    }
}
