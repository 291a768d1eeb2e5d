using BlkTapCtrl.Vhd.Format;
using BlkTapCtrl.Vhd.Image;

namespace BlkTapCtrl.Worker.Drivers;

/// <summary>
/// Which blocks may take the CA-27617 pad: the 4 KiB ending at the bitmap's end must be the block's
/// own alignment gap — free of metadata and of any other block. tapdisk and our vhd-util place every
/// block after a 7-sector gap (data on a 4 KiB boundary), except the first one after the metadata
/// (first_db, the original's only exception); qemu packs blocks with no gap at all. Computed once at a
/// read-write open from the BAT (sorted), then kept as blocks are allocated.
/// </summary>
internal sealed class VhdPadSafety
{
    private readonly bool[] _safe;
    private readonly int _padSectorsBeforeBitmap;

    private VhdPadSafety(int blocks, int padSectorsBeforeBitmap)
    {
        _safe = new bool[blocks];
        _padSectorsBeforeBitmap = padSectorsBeforeBitmap;
    }

    public bool IsSafe(uint block) => block < _safe.Length && _safe[block];

    /// <summary>A block this driver placed: safe iff its gap covers the pad.</summary>
    public void Allocated(uint block, int gapSectors)
    {
        if (block < _safe.Length) _safe[block] = gapSectors >= _padSectorsBeforeBitmap;
    }

    public static VhdPadSafety? Compute(VhdImage vhd)
    {
        if (!vhd.IsDynamic || vhd.BitmapSectors > 8) return null;
        int before = 8 - vhd.BitmapSectors;
        var result = new VhdPadSafety(vhd.Bat.Length, before);
        long span = vhd.SectorsPerBlock + vhd.BitmapSectors;
        var used = new List<(uint Sector, int Block)>();
        for (int i = 0; i < vhd.Bat.Length; i++)
            if (vhd.Bat[i] != BlockAllocationTable.Unused) used.Add((vhd.Bat[i], i));
        used.Sort((a, b) => a.Sector.CompareTo(b.Sector));
        long previousEnd = vhd.EndOfMetadataSector;
        foreach (var (sector, block) in used)
        {
            result._safe[block] = sector - before >= previousEnd;
            previousEnd = Math.Max(previousEnd, sector + span);
        }
        return result;
    }
}
