namespace BlkTapCtrl.Vhd.Format;

/// <summary>Sizes the library accepts, so no arithmetic on a hostile header can overflow.</summary>
public static class VhdLimits
{
    /// <summary>2^32 blocks of 2 MiB would be 8 PiB; the VHD spec caps disks at 2040 GiB, we accept up to 64 TiB.</summary>
    public const long MaxDiskBytes = 64L << 40;
    public const uint DefaultBlockSize = 2u << 20;
    /// <summary>Most BAT entries we load (64 TiB / 2 MiB blocks).</summary>
    public const uint MaxBatEntries = 1u << 25;
    /// <summary>Chains deeper than this are refused (loops and runaway snapshots).</summary>
    public const int MaxChainDepth = 64;
}
