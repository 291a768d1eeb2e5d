namespace BlkTapCtrl.Controller.Devices;

/// <summary>
/// The kernel blktap side of a VBD (reference §1.5: NEWINTF, MAJOR, BACKDEV_SETUP, device nodes), behind
/// an interface so the controller runs without the kernel driver (§6 item 7: kernel interfaces abstracted).
/// </summary>
public interface IBlktapDevices
{
    /// <summary>NEWINTF(domid | busid &lt;&lt; 16): a free minor in 1..256 for the VBD.</summary>
    DeviceAllocation Allocate(int domId, int busId);

    /// <summary>
    /// A restarted controller takes back the minor of a worker that kept running; throws
    /// <see cref="IOException"/> when the minor is out of range or already in use.
    /// </summary>
    DeviceAllocation Reclaim(int minor);

    /// <summary>
    /// After OPEN_RSP (the original's BACKDEV_SETUP + backdev-node/backdev-path): the block device node path to
    /// publish as <c>backdev-path</c>, or null when this provider has none.
    /// </summary>
    string? CompleteConnection(DeviceAllocation device);

    /// <summary>The minor is free again (channel destroyed).</summary>
    void Release(DeviceAllocation device);
}

/// <summary>
/// One allocated device. <see cref="RingDevice"/> is the shared-memory ring handed to the worker in place of
/// <c>/dev/xen/blktap&lt;minor&gt;</c>; <see cref="NbdSocket"/> is where the worker's NBD export of this VBD
/// listens (published under <c>&lt;backend&gt;/nbd-socket</c> once the worker created it).
/// </summary>
public sealed record DeviceAllocation(int Minor, int Major, string RingDevice, string NbdSocket);
