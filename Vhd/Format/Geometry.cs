namespace BlkTapCtrl.Vhd.Format;

/// <summary>
/// CHS geometry of the footer (cylinders &lt;&lt; 16 | heads &lt;&lt; 8 | sectors per track), computed as the
/// VHD specification says. The original computed in 32-bit arithmetic and overflowed for disks of
/// 2 TiB and more (reference §6); here the sector count is 64-bit and capped before any product.
/// </summary>
public static class Geometry
{
    public const long MaxSectors = 65535L * 16 * 255;

    public static uint FromSize(ulong sizeBytes)
    {
        ulong secs = Math.Max(1UL, (sizeBytes + 511) / 512);
        if (secs > MaxSectors)
            secs = MaxSectors;

        ulong spt, heads, cth;
        if (secs >= 65535UL * 16 * 63)
        {
            spt = 255;
            heads = 16;
            cth = secs / spt;
        }
        else
        {
            spt = 17;
            cth = secs / spt;
            heads = Math.Max(4, (cth + 1023) / 1024);
            if (cth >= heads * 1024 || heads > 16)
            {
                spt = 31;
                heads = 16;
                cth = secs / spt;
            }
            if (cth >= heads * 1024)
            {
                spt = 63;
                heads = 16;
                cth = secs / spt;
            }
        }
        ulong cylinders = cth / heads;
        return (uint)(cylinders << 16 | heads << 8 | spt);
    }

    public static uint Cylinders(uint geometry) => geometry >> 16;
    public static uint Heads(uint geometry) => (geometry >> 8) & 0xff;
    public static uint SectorsPerTrack(uint geometry) => geometry & 0xff;

    /// <summary>Bytes addressed by a geometry (what qemu uses as disk size for non-tap creators).</summary>
    public static ulong CapacityBytes(uint geometry) =>
        (ulong)Cylinders(geometry) * Heads(geometry) * SectorsPerTrack(geometry) * 512;
}
