using BlkTapCtrl.Vhd.Format;
using BlkTapCtrl.Vhd.Image;
using BlkTapCtrl.Vhd.Platform;

namespace BlkTapCtrl.Vhd.Operations;

/// <summary>The result of checking one image: every problem found, in vhd-util check's words.</summary>
public sealed class CheckReport
{
    public List<string> Problems { get; } = [];
    /// <summary>The disk type, when a footer could be trusted.</summary>
    public DiskType? Type { get; set; }
    public bool IsValid => Problems.Count == 0;
    /// <summary>Negative errno the original would return (first problem's kind), 0 when valid.</summary>
    public int Error { get; set; }
}

/// <summary>
/// vhd-util check: validates footers (primary and backup), header, BAT, batmap and parent locators.
/// Unlike the original, which stopped at the first problem, every problem found is reported.
/// </summary>
public static class VhdChecker
{
    public static CheckReport Check(string path, bool ignoreOpenedMarker = false, uint? now = null)
    {
        var report = new CheckReport();
        uint t = now ?? VhdTimestamp.Now();
        if (!File.Exists(path))
        {
            report.Problems.Add($"cannot stat {path}: {Errnos.ENOENT}");
            report.Error = -Errnos.ENOENT;
            return report;
        }
        using var h = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        long eof = NativeFile.Length(h);
        if (eof < VhdFooter.Size)
        {
            report.Problems.Add("error reading primary footer: 0");
            report.Error = -Errnos.EIO;
            return report;
        }

        var buf = new byte[VhdFooter.Size];
        VhdImage.ReadExactly(h, buf, eof - VhdFooter.Size, "primary footer");
        bool opened = !buf.AsSpan().ContainsAnyExcept((byte)0xC7);
        var primary = VhdFooter.Parse(buf);
        var primaryProblems = primary.Problems(t);
        bool primaryOk = primaryProblems.Count == 0;
        if (!primaryOk && !(opened && ignoreOpenedMarker))
            foreach (var (_, p) in primaryProblems)
                Fail(report, $"primary footer invalid: {p}");

        if (primaryOk && primary.Type == DiskType.Fixed)
        {
            report.Type = DiskType.Fixed;
            return report;
        }

        VhdImage.ReadExactly(h, buf, 0, "backup footer");
        var backup = VhdFooter.Parse(buf);
        var backupProblems = backup.Problems(t);
        bool backupOk = backupProblems.Count == 0;
        // A fixed disk has no backup; only complain about it when the primary says dynamic or is unusable.
        if (!backupOk)
            foreach (var (_, p) in backupProblems)
                Fail(report, $"backup footer invalid: {p}");
        if (primaryOk && backupOk && !primary.ToBytes(true).AsSpan().SequenceEqual(backup.ToBytes(true)))
            Fail(report, "primary and backup footers do not match");

        var footer = primaryOk ? primary : backupOk ? backup : null;
        if (footer == null)
            return report;
        report.Type = footer.Type;
        if (!footer.IsDynamic)
            return report;

        // Header.
        if ((long)footer.DataOffset + DynamicHeader.Size > eof)
        {
            Fail(report, $"error reading header: {Errnos.EIO}");
            return report;
        }
        var hb = new byte[DynamicHeader.Size];
        VhdImage.ReadExactly(h, hb, (long)footer.DataOffset, "header");
        var header = DynamicHeader.Parse(hb);
        var headerProblems = header.Problems(eof);
        foreach (var p in headerProblems)
            Fail(report, $"header is invalid: {p}");
        if (headerProblems.Count > 0)
            return report;

        VhdImage image;
        try
        {
            image = VhdImage.Open(path, VhdOpenFlags.ReadOnly | VhdOpenFlags.IgnoreDisabled | VhdOpenFlags.Lenient);
        }
        catch (VhdFormatException e)
        {
            Fail(report, $"error opening {path}: {e.Message}");
            return report;
        }
        using (image)
        {
            CheckDifferencingHeader(image, report);
            CheckBat(image, eof, report);
            CheckBatmap(image, h, report);
            if (image.IsDifferencing)
                CheckLocators(image, eof, report);
        }
        return report;
    }

    private static void Fail(CheckReport r, string problem)
    {
        r.Problems.Add(problem);
        if (r.Error == 0)
            r.Error = -Errnos.EINVAL;
    }

    private static void CheckDifferencingHeader(VhdImage image, CheckReport r)
    {
        var h = image.Header!;
        if (image.IsDifferencing)
        {
            if (h.ParentName.Length == 0)
                Fail(r, "differencing header is invalid: invalid parent name");
        }
        else if (h.ParentNameBytes.AsSpan().ContainsAnyExcept((byte)0) || h.ParentUuid != Guid.Empty)
            Fail(r, "differencing header is invalid: invalid non-null parent info");
    }

    private static void CheckBat(VhdImage image, long eof, CheckReport r)
    {
        if (eof % 512 != 0)
        {
            if (eof % 512 != 511)
            {
                Fail(r, $"invalid file size: 0x{eof:x}");
                return;
            }
            eof++;
        }
        long eofSec = (eof - VhdFooter.Size) >> 9;
        long eohSec = image.ComputeEndOfMetadata() >> 9;
        long span = image.SectorsPerBlock + image.BitmapSectors;
        var bat = image.Bat;
        var used = new List<(long Off, int Block)>();
        for (int i = 0; i < bat.Length; i++)
        {
            uint off = bat[i];
            if (off == BlockAllocationTable.Unused)
                continue;
            if (off < eohSec)
                Fail(r, $"block {i} (offset 0x{off:x}) clobbers headers");
            if (off + span > eofSec)
                Fail(r, $"block {i} (offset 0x{off:x}) clobbers footer");
            used.Add((off, i));
        }
        used.Sort((a, b) => a.Off != b.Off ? a.Off.CompareTo(b.Off) : a.Block.CompareTo(b.Block));
        for (int i = 0; i < used.Count; i++)
            for (int j = i + 1; j < used.Count && used[j].Off < used[i].Off + span; j++)
                Fail(r, $"block {used[j].Block} (offset 0x{used[j].Off:x}) clobbers block {used[i].Block} (offset 0x{used[i].Off:x})");
    }

    private static void CheckBatmap(VhdImage image, Microsoft.Win32.SafeHandles.SafeFileHandle h, CheckReport r)
    {
        var f = image.Footer;
        if (!f.IsTapCreated || f.CreatorVersion < 0x00010001)
            return;
        var header = image.Header!;
        long at = (long)BatmapHeader.HeaderOffsetFor(header.TableOffset, header.MaxBatSize);
        var b = new byte[BatmapHeader.Size];
        try { VhdImage.ReadExactly(h, b, at, "batmap header"); }
        catch (VhdFormatException)
        {
            if (f.CreatorVersion >= 0x00010002) Fail(r, $"error reading batmap: {-Errnos.EIO}");
            return;
        }
        var bh = BatmapHeader.Parse(b);
        if (f.CreatorVersion == 0x00010001 && !bh.HasValidCookie)
            return; // 1.1 images have a batmap only when its header is there
        if (!bh.HasValidCookie) { Fail(r, "batmap is invalid: invalid cookie"); return; }
        if (bh.BatmapVersion > BatmapHeader.CurrentVersion) { Fail(r, "batmap is invalid: unsupported batmap version"); return; }
        if (bh.BatmapSize == 0) { Fail(r, "batmap is invalid: invalid size zero"); return; }
        if (bh.BatmapOffset < (ulong)at + BatmapHeader.Size || (long)bh.BatmapOffset + bh.BatmapSize * 512L > image.FileLength
            || bh.BatmapSize > BatmapHeader.SectorsFor(VhdLimits.MaxBatEntries))
        {
            Fail(r, "batmap is invalid: invalid batmap offset");
            return;
        }
        var map = new byte[bh.BatmapSize * 512];
        VhdImage.ReadExactly(h, map, (long)bh.BatmapOffset, "batmap");
        if (bh.ComputeChecksum(map, f.CurrentSize) != bh.Checksum)
            Fail(r, "batmap is invalid: invalid checksum");
        int n = (int)Math.Min(header.MaxBatSize, (uint)map.Length * 8);
        for (int i = 0; i < n; i++)
            if (SectorBitmap.Test(map, i) && image.Bat[i] == BlockAllocationTable.Unused)
                Fail(r, $"batmap shows unallocated block {i} full");
    }

    private static void CheckLocators(VhdImage image, long eof, CheckReport r)
    {
        var header = image.Header!;
        var pname = header.ParentName;
        var seen = new HashSet<uint>();
        int found = 0;
        for (int i = 0; i < DynamicHeader.LocatorCount; i++)
        {
            var loc = header.Locators[i];
            if (!PlatformCode.IsKnown(loc.Code)) { Fail(r, $"invalid parent locator {i}: invalid platform code"); continue; }
            if (loc.Code == PlatformCode.None)
            {
                if (!loc.IsEmpty) Fail(r, $"invalid parent locator {i}: non-zero locator");
                continue;
            }
            string? msg = null;
            if (loc.DataOffset == 0) msg = "invalid data offset";
            else if (loc.DataSpace == 0 || loc.SpaceBytes < 0) msg = "invalid data space";
            else if (loc.DataLength == 0) msg = "invalid data length";
            else if ((long)loc.DataOffset + loc.SpaceBytes > eof - VhdFooter.Size) msg = "invalid data offset";
            else if (loc.DataLength > loc.SpaceBytes) msg = "invalid data length";
            if (msg != null) { Fail(r, $"invalid parent locator {i}: {msg}"); continue; }
            if (!seen.Add(loc.Code)) { Fail(r, $"duplicate platform code in locator {i}: 0x{loc.Code:x}"); continue; }
            if (loc.Code is not (PlatformCode.Macx or PlatformCode.W2ku or PlatformCode.W2ru))
                continue;
            string ppath;
            try { ppath = image.ReadLocator(loc); }
            catch (VhdFormatException e) { Fail(r, $"error reading parent locator {i}: {-e.Errno}"); continue; }
            var file = Path.GetFileName(ppath);
            if (file != pname) { Fail(r, $"parent locator {i} name ({file}) does not match header name ({pname})"); continue; }
            var location = ParentPath.Resolve(image.Path, ppath);
            if (location == null)
            {
                if (loc.Code == PlatformCode.Macx)
                    Fail(r, $"parent locator {i} points to missing file {ppath} (resolved to {Path.Combine(Path.GetDirectoryName(image.CanonicalPath) ?? "/", ppath)})");
                continue;
            }
            if (!image.HasRawParent)
            {
                try
                {
                    using var parent = VhdImage.Open(location, VhdOpenFlags.ReadOnly | VhdOpenFlags.IgnoreDisabled | VhdOpenFlags.Lenient);
                    if (parent.Footer.Uuid != header.ParentUuid) { Fail(r, $"invalid parent {location}: invalid parent uuid"); continue; }
                }
                catch (VhdFormatException) { Fail(r, $"invalid parent {location}: error opening parent"); continue; }
            }
            found++;
        }
        if (found == 0 && r.Problems.Count == 0)
            Fail(r, "could not find parent");
    }
}
