using BlkTapCtrl.Protocol.Control;
using BlkTapCtrl.Testing;
using BlkTapCtrl.Worker.Frontends;
using BlkTapCtrl.Worker.Images;
using BlkTapCtrl.Worker.Logging;
using BlkTapCtrl.Worker.Scheduling;
using BlkTapCtrl.Worker.Server;
using BlkTapCtrl.Worker.Vbd;

namespace BlkTapCtrl.Worker.Tests.Frontends;

/// <summary>
/// A real tapdisk server with an NBD export on a unix socket, its loop running on its own thread (the
/// one thread that touches it), for in-process frontend tests. A 20 ms tick wakes the loop so
/// <see cref="Dispose"/> and <see cref="OnLoop"/> never wait long.
/// </summary>
public sealed class NbdFrontendHarness : IDisposable
{
    private readonly Thread _thread;
    private volatile bool _stop;
    private readonly Queue<Action> _work = new();
    private readonly TempDir _dir = new("nbdf");
    private Exception? _loopFailure;

    public TapdiskServer Server { get; }
    public VirtualBlockDevice Vbd { get; }
    public NbdServer Nbd { get; }
    public string ImagePath { get; }
    public string SocketPath { get; }
    public string RingSocketPath { get; }
    public SharedMemoryRingDevice? RingDevice { get; }
    public RingFrontend? Ring { get; }
    public List<string> LogLines { get; } = new();

    /// <summary>Allocated bytes on the loop thread, sampled after each iteration.</summary>
    public long LoopAllocatedBytes => Interlocked.Read(ref _loopAllocated);
    private long _loopAllocated;

    public NbdFrontendHarness(long imageBytes = 8 << 20, bool readOnly = false, IoBackendKind backend = IoBackendKind.LinuxAio,
        Action<string>? prepareImage = null, DriverType type = DriverType.Aio, ImageOpenFlags flags = ImageOpenFlags.None,
        bool ring = false)
    {
        ImagePath = _dir["disk.raw"];
        SocketPath = _dir["nbd.sock"];
        RingSocketPath = _dir["ring.sock"];
        using (var f = File.Create(ImagePath)) f.SetLength(imageBytes);
        prepareImage?.Invoke(ImagePath);
        var log = new WorkerLog { Sink = (_, line) => { lock (LogLines) LogLines.Add(line.ToString()); } };
        Server = new TapdiskServer(new TapdiskServerOptions { Backend = backend, Log = log });
        Vbd = Server.CreateVbd(1);
        int err = Vbd.Open(new VbdOpenParameters(ImagePath, type, flags | (readOnly ? ImageOpenFlags.ReadOnly : 0)));
        if (err != 0) throw new IOException($"open failed: {err}");
        Nbd = new NbdServer(Server.Loop, new NbdExport(Vbd, "disk", readOnly), log);
        Nbd.Listen(NbdEndpoint.Parse("unix:" + SocketPath));
        if (ring)
        {
            RingDevice = new SharedMemoryRingDevice(Server.Loop, RingSocketPath,
                new Protocol.Blkif.SharedMemory.SharedRingHello(readOnly ? 1u : 0, Vbd.Sectors, 512, Protocol.Blkif.BlkifLayout.MappingPages), log);
            Ring = new RingFrontend(Server.Loop, Vbd, RingDevice, log);
        }
        Server.Loop.Register(EventMode.Timeout, -1, 20_000, static (_, _, s) => ((NbdFrontendHarness)s!).RunWork(), this);
        _thread = new Thread(Loop) { IsBackground = true, Name = "tapdisk-loop" };
        _thread.Start();
    }

    private void Loop()
    {
        try
        {
            while (!_stop && Server.Running)
            {
                Server.Iterate();
                Interlocked.Exchange(ref _loopAllocated, GC.GetAllocatedBytesForCurrentThread());
            }
        }
        catch (Exception e)
        {
            _loopFailure = e;
        }
    }

    private void RunWork()
    {
        lock (_work)
            while (_work.TryDequeue(out var a)) a();
    }

    /// <summary>Runs <paramref name="action"/> on the loop thread and waits for it.</summary>
    public T OnLoop<T>(Func<T> action)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_work) _work.Enqueue(() =>
        {
            try { done.SetResult(action()); } catch (Exception e) { done.SetException(e); }
        });
        if (!done.Task.Wait(TimeSpan.FromSeconds(10)))
            throw new TimeoutException("the loop thread did not run the action");
        return done.Task.Result;
    }

    public NbdTestClient Connect(bool structured = true, bool baseAllocation = true)
    {
        var c = new NbdTestClient(SocketPath);
        c.Connect(structured, baseAllocation, "disk");
        return c;
    }

    public bool LoopExited => !_thread.IsAlive;

    public void AssertLoopHealthy()
    {
        if (_loopFailure != null) Assert.Fail($"the event loop thread failed: {_loopFailure}");
    }

    public void Dispose()
    {
        if (_thread.IsAlive && _loopFailure == null)
        {
            try { OnLoop(() => { Nbd.Stop(); return Vbd.Close(); }); }
            catch (TimeoutException) { }
        }
        _stop = true;
        _thread.Join(TimeSpan.FromSeconds(10));
        Nbd.Dispose();
        Ring?.Dispose();
        RingDevice?.Dispose();
        Server.Dispose();
        _dir.Dispose();
        AssertLoopHealthy();
    }
}
