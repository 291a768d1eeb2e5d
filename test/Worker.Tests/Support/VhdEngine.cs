using BlkTapCtrl.Protocol.Control;
using BlkTapCtrl.Worker.Images;
using BlkTapCtrl.Worker.IO;
using BlkTapCtrl.Worker.Scheduling;
using BlkTapCtrl.Worker.Server;
using BlkTapCtrl.Worker.Vbd;

namespace BlkTapCtrl.Worker.Tests.Support;

/// <summary>
/// A real server with one VBD on an image chain opened by the real driver factory (vhd, aio), the
/// chosen backend (or a test backend from <paramref name="queueFactory"/>), and helpers that submit
/// batches of reads and writes and iterate the loop until every one is answered. The test thread is
/// the loop thread; the virtual clock is used unless the backend is native AIO.
/// </summary>
public sealed class VhdEngine : EngineBase
{
    public readonly int OpenError;

    public VhdEngine(string path, DriverType type = DriverType.Vhd, IoBackendKind backend = IoBackendKind.Synchronous,
        Func<IoBackendKind, EventLoop, IoQueue>? queueFactory = null, ImageOpenFlags flags = ImageOpenFlags.None, int memoryBytes = 8 << 20)
        : base(log => new TapdiskServerOptions
        {
            Clock = backend != IoBackendKind.Synchronous && queueFactory == null ? MonotonicClock.Instance : new VirtualClock(),
            Backend = backend,
            Log = log,
            QueueFactory = queueFactory,
        }, memoryBytes)
    {
        OpenError = Vbd.Open(new VbdOpenParameters(path, type) { Flags = flags });
        if (OpenError == 0) Vbd.Attach(Frontend);
    }

    public void RequireOpen() => Assert.That(OpenError, Is.Zero, Log);

    /// <summary>One request of a batch: data for writes; reads fill <see cref="Data"/>.</summary>
    public sealed class Op(VbdOperation operation, long sector, byte[] data)
    {
        public VbdOperation Operation = operation;
        public long Sector = sector;
        public byte[] Data = data;
        public ulong Tag;
        public int Error = int.MinValue;
        public int Answers;
        internal int MemoryOffset;
    }

    public static Op ReadOp(long sector, int sectors) => new(VbdOperation.Read, sector, new byte[sectors * 512]);
    public static Op WriteOp(long sector, byte[] data) => new(VbdOperation.Write, sector, data);

    /// <summary>Frontend answers seen when CLOSE was answered (nothing may follow).</summary>
    public int AnswersAtClose = -1;

    /// <summary>Submits the batch in one kick and iterates until every request is answered.</summary>
    public void Run(IReadOnlyList<Op> ops, int maxIterations = 100_000)
    {
        SubmitBatch(ops);
        int iterations = 0;
        while (ops.Any(o => o.Answers == 0))
        {
            if (++iterations > maxIterations)
                throw new AssertionException($"{ops.Count(o => o.Answers == 0)} requests unanswered after {maxIterations} iterations\n{string.Join("\n", Server.DebugDump())}");
            Server.Iterate();
        }
    }

    /// <summary>Submits the batch in one kick and closes the VBD in the same pass, with the requests in flight.</summary>
    public void RunThenClose(IReadOnlyList<Op> ops)
    {
        SubmitBatch(ops);
        Close();
    }

    private void SubmitBatch(IReadOnlyList<Op> ops)
    {
        var byTag = new Dictionary<ulong, Op>();
        int offset = 0;
        foreach (var op in ops)
        {
            op.MemoryOffset = offset;
            offset += (op.Data.Length + 4095) & ~4095;
            if (offset > Memory.Length) throw new ArgumentException($"batch needs {offset} bytes of request memory, have {Memory.Length}");
            if (op.Operation == VbdOperation.Write) op.Data.CopyTo(Memory.Span[op.MemoryOffset..]);
            op.Tag = SubmitOne(op.Operation, (ulong)op.Sector, op.Data.Length / 512, op.MemoryOffset);
            byTag[op.Tag] = op;
        }
        Frontend.OnAnswer = r =>
        {
            if (!byTag.TryGetValue(r.Tag, out var op)) return;
            op.Answers++;
            op.Error = r.Error;
            if (op.Operation == VbdOperation.Read && r.Error == 0)
                Memory.Span.Slice(op.MemoryOffset, op.Data.Length).CopyTo(op.Data);
        };
        Vbd.ProcessSubmitted();
        // As the server does after a frontend's callback: hand the queued I/O to the backend now (a
        // native AIO loop would otherwise sleep in epoll until its watchdog bound).
        Server.SubmitAll();
        Vbd.Kick();
    }

    public byte[] Read(long sector, int sectors)
    {
        var op = ReadOp(sector, sectors);
        Run([op]);
        Assert.That(op.Error, Is.Zero, $"read {sectors} sectors at {sector}\n{Log}");
        return op.Data;
    }

    /// <summary>The whole disk, read in 4 MiB requests.</summary>
    public byte[] ReadAll()
    {
        var all = new byte[(long)Vbd.Sectors * 512];
        for (long s = 0; s < (long)Vbd.Sectors; s += 8192)
        {
            int n = (int)Math.Min(8192, (long)Vbd.Sectors - s);
            Read(s, n).CopyTo(all, s * 512);
        }
        return all;
    }

    public void Write(long sector, byte[] data)
    {
        var op = WriteOp(sector, data);
        Run([op]);
        Assert.That(op.Error, Is.Zero, $"write {data.Length / 512} sectors at {sector}\n{Log}");
    }

    /// <summary>CLOSE: drains, closes the images (the VHD writes its metadata) and answers.</summary>
    public void Close()
    {
        if (CloseReplies > 0 || OpenError != 0) return;
        Vbd.Close();
        for (int i = 0; i < 10_000 && CloseReplies == 0; i++) Server.Iterate();
        Assert.That(CloseReplies, Is.EqualTo(1), "CLOSE answered");
    }

    public override void CloseCompleted(VirtualBlockDevice vbd)
    {
        base.CloseCompleted(vbd);
        AnswersAtClose = Frontend.Answers.Count;
    }

    public override void Dispose()
    {
        if (OpenError == 0 && CloseReplies == 0)
        {
            try { Close(); } catch (AssertionException) { }
        }
        base.Dispose();
    }
}
