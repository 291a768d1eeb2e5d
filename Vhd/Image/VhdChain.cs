using BlkTapCtrl.Vhd.Format;

namespace BlkTapCtrl.Vhd.Image;

/// <summary>
/// A leaf VHD and its parents, opened by following parent locators (relative to each child's
/// directory). Every step checks that the parent's footer UUID equals the UUID the child recorded;
/// loops and chains deeper than <see cref="VhdLimits.MaxChainDepth"/> are refused. Parents are opened
/// read-only. A differencing disk with a zero parent UUID has a raw parent file.
/// <para>How the worker uses this: <c>VhdChain.Open(path, flags)</c> at VBD open; per read request loop
/// <see cref="MapRun"/>: Present runs name the level whose file to read (<c>Images[run.Level].Handle</c>
/// at <c>run.FileOffset</c>), Zero runs are zero-filled, BitmapNeeded asks for a bitmap read at that
/// level. Writes go to <see cref="Leaf"/> (see <see cref="VhdImage"/>).</para>
/// </summary>
public sealed class VhdChain : IDisposable
{
    private readonly List<VhdImage> _images;

    private VhdChain(List<VhdImage> images) => _images = images;

    /// <summary>Level 0 is the leaf, the last entry the base.</summary>
    public IReadOnlyList<VhdImage> Images => _images;
    public VhdImage Leaf => _images[0];
    public int Depth => _images.Count;
    public long VirtualSectors => Leaf.VirtualSectors;

    public static VhdChain Open(string path, VhdOpenFlags leafFlags = VhdOpenFlags.None, int maxDepth = VhdLimits.MaxChainDepth)
    {
        var images = new List<VhdImage>();
        try
        {
            var leaf = VhdImage.Open(path, leafFlags);
            images.Add(leaf);
            var seen = new HashSet<string>(StringComparer.Ordinal) { leaf.CanonicalPath };
            var parentFlags = (leafFlags | VhdOpenFlags.ReadOnly) & ~VhdOpenFlags.Lenient;
            var child = leaf;
            while (child.IsDifferencing)
            {
                var parentPath = child.ResolveParentPath()
                    ?? throw new VhdFormatException("parent locator", child.Header!.ParentName,
                        $"no MACX/W2KU/W2RU locator of {child.Path} names an existing file", Errnos.ENOENT);
                if (!seen.Add(parentPath))
                    throw new VhdFormatException("parent", parentPath, $"chain loops back to an image already opened (from {child.Path})", Errnos.ELOOP);
                if (images.Count >= maxDepth)
                    throw new VhdFormatException("chain depth", images.Count + 1, $"deeper than the limit of {maxDepth}", Errnos.ELOOP);
                VhdImage parent;
                if (child.HasRawParent)
                {
                    parent = VhdImage.OpenRaw(parentPath);
                }
                else
                {
                    parent = VhdImage.Open(parentPath, parentFlags);
                    if (parent.Footer.Uuid != child.Header!.ParentUuid)
                    {
                        parent.Dispose();
                        throw new VhdFormatException("parent uuid", parent.Footer.Uuid,
                            $"{child.Path} records parent {child.Header.ParentUuid} but {parentPath} is {parent.Footer.Uuid}");
                    }
                }
                child.Parent = parent;
                child.ParentSectors = parent.VirtualSectors;
                images.Add(parent);
                if (parent.IsRaw)
                    break;
                child = parent;
            }
            return new VhdChain(images);
        }
        catch
        {
            foreach (var i in images) i.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The longest run at <paramref name="sector"/> served by one level: Present (with Level and
    /// FileOffset), Zero, or BitmapNeeded (at Level). Never performs I/O.
    /// </summary>
    public SectorRun MapRun(long sector, long count)
    {
        for (int level = 0; level < _images.Count; level++)
        {
            var run = _images[level].MapRun(sector, count);
            switch (run.Kind)
            {
                case RunKind.Present:
                case RunKind.Zero:
                case RunKind.BitmapNeeded:
                    return run with { Level = level };
                case RunKind.Absent:
                    count = run.Count;
                    continue;
            }
        }
        return new SectorRun(RunKind.Zero, sector, (int)Math.Min(count, int.MaxValue / 512), 0, 0, _images.Count - 1);
    }

    /// <summary>Synchronous read through the chain (bitmaps loaded as needed).</summary>
    public void Read(long sector, Span<byte> destination)
    {
        long count = destination.Length / 512;
        int done = 0;
        while (count > 0)
        {
            var run = MapRun(sector, count);
            if (run.Kind == RunKind.BitmapNeeded)
            {
                _images[run.Level].LoadBitmap(run.Block);
                continue;
            }
            var part = destination.Slice(done, run.Count * 512);
            if (run.Kind == RunKind.Present)
                VhdImage.ReadExactly(_images[run.Level].Handle, part, run.FileOffset, "data");
            else
                part.Clear();
            done += part.Length;
            sector += run.Count;
            count -= run.Count;
        }
    }

    /// <summary>Synchronous write into the leaf.</summary>
    public void Write(long sector, ReadOnlySpan<byte> data) => Leaf.Write(sector, data);

    public void Dispose()
    {
        foreach (var i in _images) i.Dispose();
    }
}
