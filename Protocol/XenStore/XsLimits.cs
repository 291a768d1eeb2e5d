namespace BlkTapCtrl.Protocol.XenStore;

/// <summary>Size limits of the xs_wire protocol (xs_wire.h, docs/misc/xenstore.txt).</summary>
public static class XsLimits
{
    /// <summary>Largest payload in either direction; a daemon kills a connection that sends more.</summary>
    public const int PayloadMax = 4096;

    /// <summary>Longest absolute path; longer ones get EINVAL.</summary>
    public const int AbsolutePathMax = 3072;

    /// <summary>Longest relative path a client may send.</summary>
    public const int RelativePathMax = 2048;

    /// <summary>Header plus the largest payload: the most one frame can occupy.</summary>
    public const int FrameMax = XsHeader.Size + PayloadMax;
}
