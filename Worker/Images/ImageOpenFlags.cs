using BlkTapCtrl.Protocol.Control;

namespace BlkTapCtrl.Worker.Images;

/// <summary>tapdisk's own open flags (reference §2), translated from the supervisor's params flags.</summary>
[Flags]
public enum ImageOpenFlags
{
    None = 0,
    Quiet = 0x01,
    Query = 0x02,
    ReadOnly = 0x04,
    Strict = 0x08,
    Shareable = 0x10,
    AddCache = 0x20,
    VhdIndex = 0x40,
    LogDirty = 0x80,
    /// <summary>Our extension (<c>tapdisk serve --cache writeback</c>): use the page cache instead of O_DIRECT; FLUSH/FUA then sync it.</summary>
    Buffered = 0x100,
}

public static class ImageOpenFlagsExtensions
{
    public static ImageOpenFlags FromControl(ControlOpenFlags flags)
    {
        var result = ImageOpenFlags.None;
        if ((flags & ControlOpenFlags.Shared) != 0) result |= ImageOpenFlags.Shareable;
        if ((flags & ControlOpenFlags.ReadOnly) != 0) result |= ImageOpenFlags.ReadOnly;
        if ((flags & ControlOpenFlags.AddCache) != 0) result |= ImageOpenFlags.AddCache;
        if ((flags & ControlOpenFlags.VhdIndex) != 0) result |= ImageOpenFlags.VhdIndex;
        if ((flags & ControlOpenFlags.LogDirty) != 0) result |= ImageOpenFlags.LogDirty;
        return result;
    }
}
