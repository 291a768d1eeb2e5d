using BlkTapCtrl.Tools.VhdUtil.Cli;
using BlkTapCtrl.Vhd;
using BlkTapCtrl.Vhd.Format;
using BlkTapCtrl.Vhd.Image;
using static BlkTapCtrl.Tools.VhdUtil.Cli.Output;

namespace BlkTapCtrl.Tools.VhdUtil.Commands;

/// <summary>"vhd-util read -p": footer, header, locators and batmap summaries, line for line as the original.</summary>
public static class HeaderPrinter
{
    private static readonly string[] TypeNames =
        ["None", "Reserved (deprecated)", "Fixed hard disk", "Dynamic hard disk", "Differencing hard disk", "Reserved (deprecated)", "Reserved (deprecated)"];

    public static void Footer(VhdFooter f, bool hex)
    {
        Line("VHD Footer Summary:\n-------------------");
        Line($"Cookie              : {CString(f.Cookie)}");
        Line($"Features            : (0x{f.Features:x8}) {((f.Features & VhdFooter.FeatureTemporary) != 0 ? "<TEMP>" : "")}{((f.Features & VhdFooter.FeatureReserved) != 0 ? "<RESV>" : "")}");
        Line($"File format version : Major: {f.FileFormatVersion >> 16}, Minor: {f.FileFormatVersion & 0xffff}");
        Line($"Data offset         : {Conv(hex, f.DataOffset)}");
        Line($"Timestamp           : {VhdTimestamp.ToCTimeString(f.Timestamp)}");
        Line($"Creator Application : '{CString(f.CreatorApplication)}'");
        Line($"Creator version     : Major: {f.CreatorVersion >> 16}, Minor: {f.CreatorVersion & 0xffff}");
        Line($"Creator OS          : {(f.CreatorOs == VhdFooter.CreatorOsWindows ? "Windows" : f.CreatorOs == VhdFooter.CreatorOsMacintosh ? "Macintosh" : "Unknown!")}");
        Line($"Original disk size  : {Conv(hex, f.OriginalSize >> 20)} MB ({Conv(hex, f.OriginalSize)} Bytes)");
        Line($"Current disk size   : {Conv(hex, f.CurrentSize >> 20)} MB ({Conv(hex, f.CurrentSize)} Bytes)");
        ulong c = Geometry.Cylinders(f.Geometry), h = Geometry.Heads(f.Geometry), s = Geometry.SectorsPerTrack(f.Geometry);
        Line($"Geometry            : Cyl: {Conv(hex, c)}, Hds: {Conv(hex, h)}, Sctrs: {Conv(hex, s)}");
        Line($"                    : = {Conv(hex, (c * h * s) >> 11)} MB ({Conv(hex, c * h * s << 9)} Bytes)");
        Line($"Disk type           : {((uint)f.Type < TypeNames.Length ? TypeNames[(uint)f.Type] : "Unknown type!\n")}");
        var sum = f.ComputeChecksum();
        Line($"Checksum            : 0x{f.Checksum:x}|0x{sum:x} ({(sum == f.Checksum ? "Good!" : "Bad!")})");
        Line($"UUID                : {f.Uuid:D}");
        Line($"Saved state         : {(f.Saved == 0 ? "No" : "Yes")}");
        Line($"Hidden              : {f.Hidden}");
        Line();
    }

    public static void Header(DynamicHeader h, bool hex)
    {
        Line("VHD Header Summary:\n-------------------");
        Line($"Cookie              : {CString(h.Cookie)}");
        Line($"Data offset (unusd) : {Conv(hex, h.DataOffset)}");
        Line($"Table offset        : {Conv(hex, h.TableOffset)}");
        Line($"Header version      : 0x{h.HeaderVersion:x8}");
        Line($"Max BAT size        : {Conv(hex, (ulong)h.MaxBatSize)}");
        Line($"Block size          : {Conv(hex, (ulong)h.BlockSize)} ({Conv(hex, (ulong)(h.BlockSize >> 20))} MB)");
        Line($"Parent name         : {h.ParentName}");
        Line($"Parent UUID         : {h.ParentUuid:D}");
        Line($"Parent timestamp    : {VhdTimestamp.ToCTimeString(h.ParentTimestamp)}");
        var sum = h.ComputeChecksum();
        Line($"Checksum            : 0x{h.Checksum:x}|0x{sum:x} ({(sum == h.Checksum ? "Good!" : "Bad!")})");
        Line();
    }

    public static void Locators(VhdImage image, bool hex)
    {
        Line("VHD Parent Locators:\n--------------------");
        for (int i = 0; i < DynamicHeader.LocatorCount; i++)
        {
            var loc = image.Header!.Locators[i];
            if (loc.Code == PlatformCode.None)
                continue;
            Line($"locator:            : {i}");
            Line($"       code         : {PlatformCode.Name(loc.Code)}");
            Line($"       data_space   : {Conv(hex, (ulong)loc.DataSpace)}");
            Line($"       data_length  : {Conv(hex, (ulong)loc.DataLength)}");
            Line($"       data_offset  : {Conv(hex, loc.DataOffset)}");
            try { Line($"       decoded name : {image.ReadLocator(loc)}"); }
            catch (VhdFormatException) { Line("failed to read parent name"); }
            Line();
        }
    }

    public static void Batmap(VhdImage image, bool hex)
    {
        var bh = image.BatmapHeader!;
        Line("VHD Batmap Summary:\n-------------------");
        Line($"Batmap offset       : {Conv(hex, bh.BatmapOffset)}");
        Line($"Batmap size (secs)  : {Conv(hex, (ulong)bh.BatmapSize)}");
        Line($"Batmap version      : 0x{bh.BatmapVersion:x8}");
        var sum = bh.ComputeChecksum(image.Batmap!, image.Footer.CurrentSize);
        Line($"Checksum            : 0x{bh.Checksum:x}|0x{sum:x} ({(sum == bh.Checksum ? "Good!" : "Bad!")})");
        Line();
    }

    public static void All(VhdImage image, bool hex)
    {
        Footer(image.Footer, hex);
        if (!image.IsDynamic)
            return;
        Header(image.Header!, hex);
        if (image.IsDifferencing)
            Locators(image, hex);
        if (image.HasBatmap)
            Batmap(image, hex);
        else if (image.Footer.IsTapCreated && image.Footer.CreatorVersion >= 0x00010002)
            Line("failed to read batmap header");
    }

    private static string CString(byte[] b)
    {
        int n = Array.IndexOf(b, (byte)0);
        return System.Text.Encoding.Latin1.GetString(b, 0, n < 0 ? b.Length : n);
    }
}
