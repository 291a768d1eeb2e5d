namespace BlkTapCtrl.Worker.Images;

/// <summary>How a run of sectors is held by one image.</summary>
public enum AllocationState
{
    /// <summary>The image holds data for the run.</summary>
    Data,
    /// <summary>The image holds nothing for the run and it reads as zeroes (a hole of a sparse file, a VHD block never written with no parent).</summary>
    Zero,
    /// <summary>The image holds nothing for the run; reads fall through to the parent (a differencing VHD's unallocated block).</summary>
    Parent,
}

/// <summary>
/// Implemented by drivers that know which parts of their image are allocated (sparse raw files, VHD
/// block maps). A driver without it is taken to hold data everywhere.
/// </summary>
public interface IImageAllocation
{
    /// <summary>
    /// The state at <paramref name="sector"/> and how many sectors from there (1..<paramref name="maxSectors"/>)
    /// share it.
    /// </summary>
    AllocationState QueryAllocation(ulong sector, ulong maxSectors, out ulong runSectors);
}

/// <summary>
/// Implemented by drivers whose allocation map is in memory (a VHD's BAT and cached bitmaps): a query
/// that never performs I/O, cheap enough for the read path.
/// </summary>
public interface IImageAllocationMap
{
    /// <summary>
    /// As <see cref="IImageAllocation.QueryAllocation"/>, from memory only; false when answering would
    /// need I/O (a bitmap not yet read).
    /// </summary>
    bool TryQueryMapped(ulong sector, ulong maxSectors, out AllocationState state, out ulong runSectors);
}

/// <summary>What the whole chain says about a run: allocated somewhere, or a hole that reads as zeroes.</summary>
public readonly record struct ChainAllocation(ulong Sectors, bool Allocated);

public static class ImageChainAllocation
{
    /// <summary>
    /// Follows the chain from <paramref name="leaf"/> the way a read does: a run the leaf leaves to its
    /// parent is asked of the parent, and a run beyond the parent's size or past the last image reads
    /// as zeroes. Returns the state of the run starting at <paramref name="sector"/>.
    /// </summary>
    public static ChainAllocation Query(Image leaf, ulong sector, ulong maxSectors)
    {
        if (maxSectors == 0)
            throw new ArgumentOutOfRangeException(nameof(maxSectors), 0, "query at least one sector");
        var image = leaf;
        ulong limit = maxSectors;
        while (true)
        {
            AllocationState state;
            ulong run;
            if (image.Driver is IImageAllocation allocation)
            {
                state = allocation.QueryAllocation(sector, limit, out run);
                run = Math.Clamp(run, 1, limit);
            }
            else
            {
                state = AllocationState.Data;
                run = limit;
            }
            if (state == AllocationState.Data) return new ChainAllocation(run, true);
            if (state == AllocationState.Zero) return new ChainAllocation(run, false);
            var parent = image.Parent;
            if (parent == null || sector >= parent.Sectors) return new ChainAllocation(run, false);
            limit = Math.Min(run, parent.Sectors - sector);
            image = parent;
        }
    }

    /// <summary>
    /// As <see cref="Query"/> from in-memory maps only (no syscall, no I/O): false when an image on the
    /// way has no <see cref="IImageAllocationMap"/> (a raw file would need lseek) or its map lacks the
    /// answer. The NBD read path uses it to answer reads of holes without reading.
    /// </summary>
    public static bool TryQueryMapped(Image leaf, ulong sector, ulong maxSectors, out ChainAllocation allocation)
    {
        allocation = default;
        if (maxSectors == 0) return false;
        var image = leaf;
        ulong limit = maxSectors;
        while (true)
        {
            if (image.Driver is not IImageAllocationMap map || !map.TryQueryMapped(sector, limit, out var state, out ulong run))
                return false;
            run = Math.Clamp(run, 1, limit);
            if (state == AllocationState.Data)
            {
                allocation = new ChainAllocation(run, true);
                return true;
            }
            var parent = image.Parent;
            if (state == AllocationState.Zero || parent == null || sector >= parent.Sectors)
            {
                allocation = new ChainAllocation(run, false);
                return true;
            }
            limit = Math.Min(run, parent.Sectors - sector);
            image = parent;
        }
    }
}
