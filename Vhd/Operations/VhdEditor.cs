using BlkTapCtrl.Vhd.Format;
using BlkTapCtrl.Vhd.Image;

namespace BlkTapCtrl.Vhd.Operations;

/// <summary>In-place edits of one VHD: hidden flag, physical size, parent, repair, fill, coalesce.</summary>
public static class VhdEditor
{
    /// <summary>
    /// Sets the hidden field and rewrites the footer. If the primary footer cannot be written for lack
    /// of space while hiding, the backup footer is written at least (as the original does).
    /// </summary>
    public static void SetHidden(string path, byte value)
    {
        using var image = VhdImage.Open(path);
        image.Footer.Hidden = value;
        try
        {
            image.WriteFooter();
        }
        catch (IOException) when (value != 0 && image.IsDynamic)
        {
            image.WriteBackupFooter();
        }
    }

    /// <summary>Rewrites the footer (from the backup when the primary is bad): vhd-util repair.</summary>
    public static void Repair(string path)
    {
        using var image = VhdImage.Open(path, VhdOpenFlags.IgnoreDisabled | VhdOpenFlags.Lenient);
        image.WriteFooter();
    }

    /// <summary>Moves the primary footer to <paramref name="physicalSize"/> − 512 (file grows).</summary>
    public static void SetPhysicalSize(string path, long physicalSize)
    {
        using var image = VhdImage.Open(path);
        if (image.IsBlockDevice)
            throw new VhdFormatException("physical size", physicalSize, "a block device's footer is always at its end");
        if (physicalSize < image.EndOfData + VhdFooter.Size || physicalSize % 512 != 0)
            throw new VhdFormatException("physical size", physicalSize, $"must be a multiple of 512 and at least {image.EndOfData + VhdFooter.Size}");
        RandomAccess.SetLength(image.Handle, physicalSize);
        RandomAccess.Write(image.Handle, image.Footer.ToBytes(), physicalSize - VhdFooter.Size);
    }

    /// <summary>
    /// Points a differencing disk at a new parent: parent UUID (zero for raw), timestamp (parent mtime),
    /// name, and the locators rewritten in place (each must fit its data space).
    /// </summary>
    public static void ChangeParent(string path, string newParent, bool parentIsRaw)
    {
        using var image = VhdImage.Open(path);
        if (!image.IsDifferencing)
            throw new VhdFormatException("disk type", image.Footer.Type, "only differencing disks have a parent");
        var parentPath = ParentPath.Canonical(newParent);
        Guid uuid = Guid.Empty;
        if (!parentIsRaw)
        {
            using var parent = VhdImage.Open(parentPath, VhdOpenFlags.ReadOnly | VhdOpenFlags.IgnoreDisabled);
            uuid = parent.Footer.Uuid;
        }
        else if (!File.Exists(parentPath))
            throw new VhdFormatException("parent", newParent, "no such file", Errnos.ENOENT);
        var h = image.Header!;
        var relative = ParentPath.Relative(image.Path, parentPath);
        var writes = new List<(long, byte[])>();
        for (int i = 0; i < DynamicHeader.LocatorCount; i++)
        {
            var loc = h.Locators[i];
            if (loc.Code is not (PlatformCode.Macx or PlatformCode.W2ku or PlatformCode.W2ru)) continue;
            var data = ParentLocator.Encode(loc.Code, relative);
            if (data.Length > loc.SpaceBytes)
                throw new VhdFormatException($"locator {i} data space", loc.DataSpace, $"too small for '{relative}' ({data.Length} bytes)", Errnos.ENOSPC);
            var padded = new byte[loc.SpaceBytes];
            data.CopyTo(padded, 0);
            writes.Add(((long)loc.DataOffset, padded));
            loc.DataLength = (uint)data.Length;
            h.Locators[i] = loc;
        }
        h.ParentUuid = uuid;
        h.ParentTimestamp = VhdTimestamp.FromDateTime(File.GetLastWriteTimeUtc(parentPath));
        h.ParentName = Path.GetFileName(parentPath);
        foreach (var (offset, data) in writes)
            RandomAccess.Write(image.Handle, data, offset);
        image.WriteHeader();
    }

    /// <summary>Reads every block through the chain and writes it into the leaf (vhd-util fill).</summary>
    public static void Fill(string path)
    {
        using var chain = VhdChain.Open(path);
        var leaf = chain.Leaf;
        int blockSectors = leaf.IsDynamic ? leaf.SectorsPerBlock : 4096;
        var buf = new byte[blockSectors * 512];
        for (long s = 0; s < chain.VirtualSectors; s += blockSectors)
        {
            int n = (int)Math.Min(blockSectors, chain.VirtualSectors - s);
            var part = buf.AsSpan(0, n * 512);
            chain.Read(s, part);
            leaf.Write(s, part);
        }
    }

    /// <summary>
    /// Copies every sector written in a differencing disk into its parent (a VHD or a raw file):
    /// batmap-full blocks whole, others run by run of set bitmap bits.
    /// </summary>
    public static void Coalesce(string path)
    {
        using var child = VhdImage.Open(path, VhdOpenFlags.ReadOnly);
        if (!child.IsDifferencing)
            throw new VhdFormatException("disk type", child.Footer.Type, "coalescing of non-differencing disks is not supported");
        var parentPath = child.ResolveParentPath()
            ?? throw new VhdFormatException("parent locator", child.Header!.ParentName, "parent not found", Errnos.ENOENT);
        using var parent = child.HasRawParent ? VhdImage.OpenRaw(parentPath, readOnly: false) : VhdImage.Open(parentPath);
        if (!parent.IsRaw && parent.Footer.Uuid != child.Header!.ParentUuid)
            throw new VhdFormatException("parent uuid", parent.Footer.Uuid, $"{path} records parent {child.Header.ParentUuid}");
        int spb = child.SectorsPerBlock;
        var buf = new byte[spb * 512];
        for (uint b = 0; b < child.BlockCount; b++)
        {
            if (!child.IsBlockAllocated(b)) continue;
            long first = (long)b * spb;
            int secs = (int)Math.Min(spb, child.VirtualSectors - first);
            secs = (int)Math.Min(secs, Math.Max(0, parent.VirtualSectors - first));
            if (secs <= 0) continue;
            if (child.IsBlockFull(b))
            {
                VhdImage.ReadExactly(child.Handle, buf.AsSpan(0, secs * 512), child.DataFileOffset(b, 0), $"block {b}");
                parent.Write(first, buf.AsSpan(0, secs * 512));
                continue;
            }
            var bm = child.LoadBitmap(b);
            int i = 0;
            while (i < secs)
            {
                int run = SectorBitmap.RunLength(bm.Committed, i, secs - i);
                if (bm.IsSet(i))
                {
                    var part = buf.AsSpan(0, run * 512);
                    VhdImage.ReadExactly(child.Handle, part, child.DataFileOffset(b, i), $"block {b}");
                    parent.Write(first + i, part);
                }
                i += run;
            }
        }
        if (!parent.IsRaw)
            parent.WriteFooter();
    }
}
