using BlkTapCtrl.Worker.IO;

namespace BlkTapCtrl.Worker.Tests.Support;

/// <summary>
/// A synchronous backend (pread/pwrite during submit, like rwio) that records every merged I/O it
/// executes and can inject faults at the backend level, under the real drivers: <see cref="Fault"/>
/// returns 0 to execute the I/O, a negative errno to fail it without touching the disk, or a positive
/// byte count to execute only that many bytes (a short I/O, which the queue turns into −EIO).
/// </summary>
public sealed class InstrumentedIoQueue(int capacity = IoQueue.DefaultCapacity) : IoQueue(capacity)
{
    public readonly List<(IoOperation Op, long Offset, long Length, long Result)> Executed = new();
    public Func<IoOperation, long, long, long>? Fault;
    /// <summary>Every answer a VBD frontend saw is stamped with the number of I/Os executed before it (set by tests).</summary>
    public int ExecutedCount => Executed.Count;

    public override string Name => "instrumented";

    protected override void SubmitMerged(ref IoRequestList heads)
    {
        while (heads.Take() is { } head)
        {
            long fault = Fault?.Invoke(head.Operation, head.Offset, head.MergedLength) ?? 0;
            long result;
            if (fault < 0) result = fault;
            else if (fault > 0 && fault < head.MergedLength)
                result = SynchronousIoQueue.Execute(head.Fd, head.Operation, head.Buffer, fault, head.Offset);
            else result = SynchronousIoQueue.Execute(head.Fd, head.Operation, head.Buffer, head.MergedLength, head.Offset);
            Executed.Add((head.Operation, head.Offset, head.MergedLength, result));
            CompleteMerged(head, result);
        }
        AfterCompletionBatch();
    }
}
