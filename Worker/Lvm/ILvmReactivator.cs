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
}

/// <summary>For storage that is not LVM, and engine tests: nothing to do.</summary>
public sealed class NoLvmReactivation : ILvmReactivator
{
    public static readonly NoLvmReactivation Instance = new();
    public int Reactivate(VbdOpenParameters parameters) => 0;
}
