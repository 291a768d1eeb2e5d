namespace BlkTapCtrl.Worker.IO;

/// <summary>Receives the result of an <see cref="IoRequest"/>: 0 when every byte moved, else −errno (short ⇒ −EIO).</summary>
public interface IIoCompletion
{
    void OnIoCompleted(IoRequest request, int result);
}

/// <summary>
/// One I/O (blktap's tiocb). Owned and reused by the driver that issues it, so queueing allocates
/// nothing; the queue links it into its lists and into merged runs through the internal fields.
/// The buffer is native or pinned memory that stays valid until the completion.
/// </summary>
public class IoRequest
{
    public int Fd;
    public IoOperation Operation;
    public nint Buffer;
    public int Length;
    public long Offset;
    public IIoCompletion? Completion;

    internal IoRequest? Next;
    internal IoRequest? NextPart;
    internal long MergedLength;
    internal int Parts;

    public void Set(int fd, IoOperation operation, nint buffer, int length, long offset, IIoCompletion completion)
    {
        Fd = fd;
        Operation = operation;
        Buffer = buffer;
        Length = length;
        Offset = offset;
        Completion = completion;
    }
}
