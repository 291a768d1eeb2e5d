using BlkTapCtrl.Worker.Vbd;
using BlkTapCtrl.Worker.Images;
using BlkTapCtrl.Worker.Lvm;
using BlkTapCtrl.Worker.Logging;
using BlkTapCtrl.Worker.Scheduling;

namespace BlkTapCtrl.Worker.Server;

/// <summary>Which I/O backend a VBD's drivers use (reference §3.7).</summary>
public enum IoBackendKind
{
    /// <summary>Linux native AIO with an eventfd in the loop (blktap's lio). Falls back to synchronous if unavailable.</summary>
    LinuxAio,
    /// <summary>Blocking pread/pwrite during submit (blktap's rwio).</summary>
    Synchronous,
    /// <summary>io_uring with an eventfd in the loop: asynchronous on the page cache too. Falls back to native AIO if unavailable.</summary>
    IoUring,
}

public sealed class TapdiskServerOptions
{
    public IClock Clock { get; init; } = MonotonicClock.Instance;
    public WorkerLog Log { get; init; } = new();
    public IImageDriverFactory DriverFactory { get; init; } = Drivers.DefaultImageDriverFactory.Instance;
    public ILvmReactivator Lvm { get; init; } = NoLvmReactivation.Instance;
    /// <summary>io_uring by default: measured at or above lio with O_DIRECT and far above it on the page cache (bench/NbdBench.cs).</summary>
    public IoBackendKind Backend { get; init; } = IoBackendKind.IoUring;
    public int IoQueueCapacity { get; init; } = IO.IoQueue.DefaultCapacity;
    /// <summary>The loop's maximum spin before sleeping (<see cref="AdaptivePolling"/>); 0 never spins.</summary>
    public long PollMaxMicroseconds { get; init; } = PollMaxFromEnvironment();
    public int RequestSlotsPerVbd { get; init; } = VirtualBlockDevice.DefaultRequestSlots;

    /// <summary>Backend from <c>TAPDISK_IO_BACKEND</c> (<c>uring</c>, <c>aio</c> or <c>sync</c>), default io_uring.</summary>
    public static IoBackendKind BackendFromEnvironment() => ParseBackend(Environment.GetEnvironmentVariable("TAPDISK_IO_BACKEND")) ?? IoBackendKind.IoUring;

    /// <summary><c>TAPDISK_POLL_US</c>: the loop's maximum spin in µs (0 = never spin; a dom0 short of CPU may want that).</summary>
    public static long PollMaxFromEnvironment() =>
        long.TryParse(Environment.GetEnvironmentVariable("TAPDISK_POLL_US"), System.Globalization.NumberStyles.None,
            System.Globalization.CultureInfo.InvariantCulture, out long us) ? us : AdaptivePolling.DefaultMaxMicroseconds;

    /// <summary>The backend names of <c>TAPDISK_IO_BACKEND</c> and <c>tapdisk serve --backend</c>; null when unknown.</summary>
    public static IoBackendKind? ParseBackend(string? name) => name switch
    {
        "aio" or "lio" => IoBackendKind.LinuxAio,
        "sync" or "rwio" => IoBackendKind.Synchronous,
        "uring" or "io_uring" => IoBackendKind.IoUring,
        _ => null,
    };

    /// <summary>
    /// Tests: builds the I/O queue for a backend kind instead of the real one (an instrumented or
    /// fault-injecting backend under the real drivers). Null ⇒ lio/rwio.
    /// </summary>
    public Func<IoBackendKind, EventLoop, IO.IoQueue>? QueueFactory { get; init; }
}
