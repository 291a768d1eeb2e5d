using BlkTapCtrl.Protocol.Control;
using BlkTapCtrl.Testing;
using BlkTapCtrl.Worker.IO;
using BlkTapCtrl.Worker.Scheduling;
using BlkTapCtrl.Worker.Server;
using BlkTapCtrl.Worker.Vbd;

namespace BlkTapCtrl.Worker.Tests.Support;

/// <summary>
/// A real server with one VBD on a real image file, in virtual time, a fault-injecting driver in
/// front of the real one, and a recording frontend. The test thread is the loop thread.
/// </summary>
public sealed class EngineHarness : EngineBase
{
    public readonly TempDir Dir;
    public readonly VirtualClock Clock;
    public readonly FaultInjectingFactory Factory;
    public readonly string ImagePath;

    public EngineHarness(int sectors = 4096, IoBackendKind backend = IoBackendKind.Synchronous,
        DriverType driver = DriverType.Aio, int memoryBytes = 1 << 20, bool open = true)
        : this(new TempDir("wk"), new VirtualClock(), new FaultInjectingFactory(), sectors, backend, driver, memoryBytes, open)
    {
    }

    private EngineHarness(TempDir dir, VirtualClock clock, FaultInjectingFactory factory, int sectors, IoBackendKind backend,
        DriverType driver, int memoryBytes, bool open)
        : base(log => new TapdiskServerOptions { Clock = clock, DriverFactory = factory, Backend = backend, Log = log }, memoryBytes)
    {
        Dir = dir;
        Clock = clock;
        Factory = factory;
        ImagePath = Dir["disk.img"];
        var data = new byte[sectors * 512];
        for (int i = 0; i < data.Length; i += 512) BitConverter.TryWriteBytes(data.AsSpan(i), i / 512);
        File.WriteAllBytes(ImagePath, data);
        if (open)
        {
            Assert.That(Vbd.Open(new VbdOpenParameters(ImagePath, driver)), Is.Zero, Log);
            Vbd.Attach(Frontend);
        }
    }

    public FaultInjectingDriver Driver => Factory.Last;

    /// <summary>Submits a request with one segment at <paramref name="memoryOffset"/> (not yet issued).</summary>
    public ulong Submit(VbdOperation op, ulong sector, int sectors, int memoryOffset = 0) => SubmitOne(op, sector, sectors, memoryOffset);

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

    public override void Dispose()
    {
        base.Dispose();
        Dir.Dispose();
    }
}
