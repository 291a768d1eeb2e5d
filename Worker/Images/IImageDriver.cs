using BlkTapCtrl.Protocol.Control;
using BlkTapCtrl.Worker.Vbd;

namespace BlkTapCtrl.Worker.Images;

/// <summary>
/// One open image of a chain (aio, ram, vhd…). <see cref="Queue"/> gets only requests already
/// validated by <see cref="Image.Queue"/> (open, in range, no write to a read-only image) and must
/// complete every sector exactly once — now or later on the loop thread — by
/// <see cref="TapRequest.Complete"/> or by forwarding to the parent with <see cref="Image.Forward"/>.
/// </summary>
public interface IImageDriver : IDisposable
{
    ulong Sectors { get; }
    uint SectorSize { get; }

    /// <summary>The parent to open next, or null at the end of the chain.</summary>
    ImageParent? Parent { get; }

    void Queue(in TapRequest request);

    /// <summary>One line for debug dumps.</summary>
    string Describe();
}

/// <param name="ExpectedUuid">The identity the child recorded for its parent (a differencing VHD's parent
/// UUID): the chain refuses a parent whose <see cref="IImageIdentity.Uuid"/> differs. Null ⇒ not checked.</param>
public sealed record ImageParent(string Name, DriverType Type, Guid? ExpectedUuid = null);

/// <summary>Drivers whose images carry an identity a child can name (a VHD footer's UUID).</summary>
public interface IImageIdentity
{
    Guid Uuid { get; }
}

/// <summary>Opens drivers; the engine tests wrap the real factory to inject faults.</summary>
public interface IImageDriverFactory
{
    /// <summary>Returns 0 and the driver, or a negative errno (logged by the caller).</summary>
    int Open(DriverType type, string name, ImageOpenFlags flags, DriverContext context, out IImageDriver? driver);
}

/// <summary>What a driver may use: the VBD's I/O queue and the log.</summary>
public sealed record DriverContext(IO.IoQueue Io, Logging.WorkerLog Log, Scheduling.EventLoop Loop);
