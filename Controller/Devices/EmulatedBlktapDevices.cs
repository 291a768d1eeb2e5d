namespace BlkTapCtrl.Controller.Devices;

/// <summary>
/// The blktap device without a kernel driver: the controller hands out minors 1..256 itself (lowest free
/// first, as NEWINTF does) and names the per-VBD ring file and NBD socket inside the run directory.
/// There is no kernel block device, so no <c>backdev-path</c> is published.
/// </summary>
public sealed class EmulatedBlktapDevices(string runDir) : IBlktapDevices
{
    public const int MaxMinor = 256;
    private readonly bool[] _used = new bool[MaxMinor + 1];

    public DeviceAllocation Allocate(int domId, int busId)
    {
        for (int minor = 1; minor <= MaxMinor; minor++)
        {
            if (_used[minor]) continue;
            _used[minor] = true;
            return Describe(minor);
        }
        throw new IOException($"no free blktap minor (all {MaxMinor} in use)");
    }

    public DeviceAllocation Reclaim(int minor)
    {
        if (minor is < 1 or > MaxMinor)
            throw new IOException($"minor {minor} is outside 1..{MaxMinor}");
        if (_used[minor])
            throw new IOException($"minor {minor} is already in use");
        _used[minor] = true;
        return Describe(minor);
    }

    private DeviceAllocation Describe(int minor) =>
        new(minor, 0, Path.Combine(runDir, $"ring{minor}"), Path.Combine(runDir, $"nbd{minor}.sock"));

    public string? CompleteConnection(DeviceAllocation device) => null;

    public void Release(DeviceAllocation device)
    {
        if (device.Minor is >= 1 and <= MaxMinor)
            _used[device.Minor] = false;
    }
}
