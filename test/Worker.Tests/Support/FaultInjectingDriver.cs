using BlkTapCtrl.Protocol.Control;
using BlkTapCtrl.Worker.Drivers;
using BlkTapCtrl.Worker.Images;
using BlkTapCtrl.Worker.Vbd;

namespace BlkTapCtrl.Worker.Tests.Support;

/// <summary>
/// Wraps a real driver (aio or ram on a real file) and injects faults in front of it: a synchronous
/// error, holding requests until the test releases them, or a later (asynchronous) error. Requests
/// it lets through are served by the real driver.
/// </summary>
public sealed class FaultInjectingDriver(IImageDriver inner) : IImageDriver
{
    private readonly List<TapRequest> _held = new();

    public IImageDriver Inner { get; } = inner;
    public readonly List<(VbdOperation Op, ulong Sector, int Sectors)> Seen = new();

    /// <summary>Non-zero ⇒ the request is completed with this error before reaching the real driver.</summary>
    public Func<TapRequest, int>? SynchronousError;

    /// <summary>Non-zero ⇒ the request is held and later completed with this error by <see cref="ReleaseHeld"/>.</summary>
    public Func<TapRequest, int>? DeferredError;

    /// <summary>Hold every request until <see cref="ReleaseHeld"/>.</summary>
    public bool Hold;

    public int HeldCount => _held.Count;
    public ulong Sectors => Inner.Sectors;
    public uint SectorSize => Inner.SectorSize;
    public ImageParent? Parent => Inner.Parent;
    public bool Disposed { get; private set; }

    public void Queue(in TapRequest request)
    {
        Seen.Add((request.Operation, request.Sector, request.Sectors));
        int err = SynchronousError?.Invoke(request) ?? 0;
        if (err != 0)
        {
            request.Complete(err);
            return;
        }
        if (Hold || (DeferredError?.Invoke(request) ?? 0) != 0)
        {
            _held.Add(request);
            return;
        }
        Inner.Queue(request);
    }

    /// <summary>Lets held requests go: to the real driver, or failed with their deferred error.</summary>
    public void ReleaseHeld()
    {
        var held = _held.ToArray();
        _held.Clear();
        foreach (var t in held)
        {
            int err = DeferredError?.Invoke(t) ?? 0;
            if (err != 0) t.Complete(err);
            else Inner.Queue(t);
        }
    }

    public string Describe() => "faulty " + Inner.Describe();

    public void Dispose()
    {
        Disposed = true;
        Inner.Dispose();
    }
}

/// <summary>Opens real drivers and wraps each in a <see cref="FaultInjectingDriver"/> the test can reach.</summary>
public sealed class FaultInjectingFactory : IImageDriverFactory
{
    public readonly List<FaultInjectingDriver> Opened = new();
    public Action<FaultInjectingDriver>? Configure;
    public Func<string, int>? OpenError;

    public FaultInjectingDriver Last => Opened[^1];

    public int Open(DriverType type, string name, ImageOpenFlags flags, DriverContext context, out IImageDriver? driver)
    {
        driver = null;
        int forced = OpenError?.Invoke(name) ?? 0;
        if (forced != 0) return forced;
        int err = DefaultImageDriverFactory.Instance.Open(type, name, flags, context, out var real);
        if (err != 0) return err;
        var faulty = new FaultInjectingDriver(real!);
        Configure?.Invoke(faulty);
        Opened.Add(faulty);
        driver = faulty;
        return 0;
    }
}
