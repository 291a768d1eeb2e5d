using BlkTapCtrl.Worker.Vbd;

namespace BlkTapCtrl.Worker.Lvm;

/// <summary>
/// Reactivates the logical volumes of an LVM-backed chain before it is opened (reference §3.9): the
/// VBD calls it once at OPEN and on every RESUME, before the image chain opens, whatever the driver.
/// Returns 0 or a negative errno (already logged).
/// </summary>
public interface ILvmReactivator
{
    int Reactivate(VbdOpenParameters parameters);

    /// <summary>
    /// RESUME's name check (§3.5), before <see cref="Reactivate"/> on each attempt: the volume RESUME names, or the
    /// VHD volume a live snapshot renamed it to (<see cref="LvhdVolumeName"/>) with the driver switched to vhd.
    /// Returns 0 with the parameters to open, or a negative errno (already logged; the caller retries).
    /// </summary>
    int CheckResumeVolume(VbdOpenParameters parameters, out VbdOpenParameters resolved);
}

/// <summary>For storage that is not LVM, and engine tests: nothing to do.</summary>
public sealed class NoLvmReactivation : ILvmReactivator
{
    public static readonly NoLvmReactivation Instance = new();
    public int Reactivate(VbdOpenParameters parameters) => 0;

    public int CheckResumeVolume(VbdOpenParameters parameters, out VbdOpenParameters resolved)
    {
        resolved = parameters;
        return 0;
    }
}
