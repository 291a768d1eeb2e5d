using BlkTapCtrl.Protocol.Control;
using BlkTapCtrl.Worker.Images;
using BlkTapCtrl.Worker.IO;
using BlkTapCtrl.Worker.Logging;
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
public sealed class VhdEngine : IDisposable, IVbdControlReplies
{
    public readonly List<string> LogLines = new();
    public readonly RecordingFrontend Frontend = new();
    public readonly AlignedBuffer Memory;
    public readonly TapdiskServer Server;
    public readonly VirtualBlockDevice Vbd;
    public readonly int OpenError;
    public int CloseReplies;
    private ulong _nextTag = 1;

    public VhdEngine(string path, DriverType type = DriverType.Vhd, IoBackendKind backend = IoBackendKind.Synchronous,
        Func<IoBackendKind, EventLoop, IoQueue>? queueFactory = null, ImageOpenFlags flags = ImageOpenFlags.None, int memoryBytes = 8 << 20)
    {
        var log = new WorkerLog { Sink = (_, line) => LogLines.Add(line) };
        IClock clock = backend != IoBackendKind.Synchronous && queueFactory == null ? MonotonicClock.Instance : new VirtualClock();
        Server = new TapdiskServer(new TapdiskServerOptions { Clock = clock, Backend = backend, Log = log, QueueFactory = queueFactory });
        Memory = new AlignedBuffer(memoryBytes);
        Vbd = Server.CreateVbd(1);
        Vbd.ControlReplies = this;
        Frontend.IterationSource = () => Server.Iterations;
        OpenError = Vbd.Open(new VbdOpenParameters(path, type) { Flags = flags });
        if (OpenError == 0) Vbd.Attach(Frontend);
    }

    public string Log => string.Join("\n", LogLines);

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

    private unsafe void SubmitBatch(IReadOnlyList<Op> ops)
    {
        var byTag = new Dictionary<ulong, Op>();
        int offset = 0;
        foreach (var op in ops)
        {
            op.MemoryOffset = offset;
            offset += (op.Data.Length + 4095) & ~4095;
            if (offset > Memory.Length) throw new ArgumentException($"batch needs {offset} bytes of request memory, have {Memory.Length}");
            if (op.Operation == VbdOperation.Write) op.Data.CopyTo(Memory.Span[op.MemoryOffset..]);
            var r = Vbd.TryRentRequest(Frontend) ?? throw new AssertionException("no free request slot");
            op.Tag = _nextTag++;
            r.Tag = op.Tag;
            r.Operation = op.Operation;
            r.Sector = (ulong)op.Sector;
            if (op.Operation != VbdOperation.Flush) r.AddSegment(Memory.Pointer + op.MemoryOffset, op.Data.Length / 512);
            byTag[op.Tag] = op;
            Vbd.Submit(r);
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

    public void PauseCompleted(VirtualBlockDevice vbd) { }
    public void CloseCompleted(VirtualBlockDevice vbd)
    {
        CloseReplies++;
        AnswersAtClose = Frontend.Answers.Count;
    }

    public void Dispose()
    {
        if (OpenError == 0 && CloseReplies == 0)
        {
            try { Close(); } catch (AssertionException) { }
        }
        Server.Dispose();
        Memory.Dispose();
    }
}
