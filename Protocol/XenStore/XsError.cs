namespace BlkTapCtrl.Protocol.XenStore;

/// <summary>
/// The errno values an ERROR reply may name (xs_wire.h <c>xsd_errors</c>), numbered as on Linux so a
/// client can hand them on as errno. The wire carries the name (e.g. <c>"ENOENT"</c>), never the number.
/// </summary>
public enum XsError
{
    EINVAL = 22,
    EACCES = 13,
    EEXIST = 17,
    EISDIR = 21,
    ENOENT = 2,
    ENOMEM = 12,
    ENOSPC = 28,
    EIO = 5,
    ENOTEMPTY = 39,
    ENOSYS = 38,
    EROFS = 30,
    EBUSY = 16,
    EAGAIN = 11,
    EISCONN = 106,
    E2BIG = 7,
}

public static class XsErrors
{
    private static readonly XsError[] All =
    [
        XsError.EINVAL, XsError.EACCES, XsError.EEXIST, XsError.EISDIR, XsError.ENOENT, XsError.ENOMEM,
        XsError.ENOSPC, XsError.EIO, XsError.ENOTEMPTY, XsError.ENOSYS, XsError.EROFS, XsError.EBUSY,
        XsError.EAGAIN, XsError.EISCONN, XsError.E2BIG,
    ];

    // Encoded once: replies reuse these bytes instead of formatting a string per error.
    private static readonly Dictionary<XsError, byte[]> Payloads =
        All.ToDictionary(e => e, e => System.Text.Encoding.ASCII.GetBytes(Name(e) + "\0"));

    /// <summary>The wire name, e.g. <c>EAGAIN</c>.</summary>
    public static string Name(XsError error) => error switch
    {
        XsError.EINVAL => "EINVAL",
        XsError.EACCES => "EACCES",
        XsError.EEXIST => "EEXIST",
        XsError.EISDIR => "EISDIR",
        XsError.ENOENT => "ENOENT",
        XsError.ENOMEM => "ENOMEM",
        XsError.ENOSPC => "ENOSPC",
        XsError.EIO => "EIO",
        XsError.ENOTEMPTY => "ENOTEMPTY",
        XsError.ENOSYS => "ENOSYS",
        XsError.EROFS => "EROFS",
        XsError.EBUSY => "EBUSY",
        XsError.EAGAIN => "EAGAIN",
        XsError.EISCONN => "EISCONN",
        XsError.E2BIG => "E2BIG",
        _ => throw new ArgumentOutOfRangeException(nameof(error), error, "not an xs_wire error"),
    };

    /// <summary>The ERROR reply payload: the name followed by a NUL.</summary>
    public static ReadOnlySpan<byte> Payload(XsError error) => Payloads[error];

    /// <summary>
    /// Parses an ERROR payload (name with or without its NUL). Unknown names map to EINVAL, as libxenstore does,
    /// so a newer daemon's error still surfaces as a failure.
    /// </summary>
    public static XsError Parse(ReadOnlySpan<byte> payload)
    {
        int nul = payload.IndexOf((byte)0);
        if (nul >= 0) payload = payload[..nul];
        foreach (var e in All)
        {
            if (payload.SequenceEqual(Payloads[e].AsSpan(0, Payloads[e].Length - 1)))
                return e;
        }
        return XsError.EINVAL;
    }

    public static bool TryParseName(string name, out XsError error)
    {
        foreach (var e in All)
        {
            if (Name(e) == name) { error = e; return true; }
        }
        error = default;
        return false;
    }
}
