namespace BlkTapCtrl.Vhd.Format;

/// <summary>Footer disk type (offset 60).</summary>
public enum DiskType : uint
{
    None = 0,
    Fixed = 2,
    Dynamic = 3,
    Differencing = 4,
}
