using BlkTapCtrl.Protocol.Control;
using BlkTapCtrl.Testing;
using BlkTapCtrl.Worker.IO;
using BlkTapCtrl.Worker.Logging;
using BlkTapCtrl.Worker.Scheduling;
using BlkTapCtrl.Worker.Server;
using BlkTapCtrl.Worker.Vbd;

namespace BlkTapCtrl.Worker.Tests.Support;

/// <summary>
/// A real server with one VBD on a real image file, in virtual time, a fault-injecting driver in
/// front of the real one, and a recording frontend. The test thread is the loop thread.
/// </summary>
public sealed class EngineHarness : IDisposable, IVbdControlReplies
{
    public readonly TempDir Dir = new("wk");
    public readonly VirtualClock Clock = new();
    public readonly FaultInjectingFactory Factory = new();
    public readonly List<string> LogLines = new();
    public readonly RecordingFrontend Frontend = new();
    public readonly AlignedBuffer Memory;
    public readonly TapdiskServer Server;
    public readonly VirtualBlockDevice Vbd;
    public readonly string ImagePath;
    public int PauseReplies, CloseReplies;
    private ulong _nextTag = 1;

    public EngineHarness(int sectors = 4096, IoBackendKind backend = IoBackendKind.Synchronous,
        DriverType driver = DriverType.Aio, int memoryBytes = 1 << 20, bool open = true)
    {
        ImagePath = Dir["disk.img"];
        var data = new byte[sectors * 512];
        for (int i = 0; i < data.Length; i += 512) BitConverter.TryWriteBytes(data.AsSpan(i), i / 512);
        File.WriteAllBytes(ImagePath, data);
        var log = new WorkerLog { Sink = (_, line) => LogLines.Add(line) };
        Server = new TapdiskServer(new TapdiskServerOptions { Clock = Clock, DriverFactory = Factory, Backend = backend, Log = log });
        Memory = new AlignedBuffer(memoryBytes);
        Vbd = Server.CreateVbd(1);
        Vbd.ControlReplies = this;
        Frontend.IterationSource = () => Server.Iterations;
        if (open)
        {
            Assert.That(Vbd.Open(new VbdOpenParameters(ImagePath, driver)), Is.Zero, string.Join("\n", LogLines));
            Vbd.Attach(Frontend);
        }
    }

    public FaultInjectingDriver Driver => Factory.Last;

    /// <summary>Submits a request with one segment at <paramref name="memoryOffset"/> (not yet issued).</summary>
    public ulong Submit(VbdOperation op, ulong sector, int sectors, int memoryOffset = 0)
    {
        var r = Vbd.TryRentRequest(Frontend) ?? throw new AssertionException("no free request slot");
        ulong tag = _nextTag++;
        r.Tag = tag;
        r.Operation = op;
        r.Sector = sector;
        if (op != VbdOperation.Flush) r.AddSegment(Memory.Pointer + memoryOffset, sectors);
        Vbd.Submit(r);
        return tag;
    }

    /// <summary>A frontend batch: submit, then one kick in (issues at once, like a ring event).</summary>
    public ulong SubmitAndProcess(VbdOperation op, ulong sector, int sectors, int memoryOffset = 0)
    {
        ulong tag = Submit(op, sector, sectors, memoryOffset);
        Vbd.ProcessSubmitted();
        return tag;
    }

    public void Iterate(int times = 1)
    {
        for (int i = 0; i < times; i++) Server.Iterate();
    }

    /// <summary>Iterates until <paramref name="done"/> or the iteration budget is spent (then fails).</summary>
    public void IterateUntil(Func<bool> done, int maxIterations = 10_000, string? what = null)
    {
        for (int i = 0; i < maxIterations && !done(); i++) Server.Iterate();
        Assert.That(done(), Is.True, what ?? "condition not reached");
    }

    public void PauseCompleted(VirtualBlockDevice vbd) => PauseReplies++;
    public void CloseCompleted(VirtualBlockDevice vbd) => CloseReplies++;

    public void Dispose()
    {
        Server.Dispose();
        Memory.Dispose();
        Dir.Dispose();
    }
}
