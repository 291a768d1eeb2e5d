namespace BlkTapCtrl.Protocol.XenStore;

/// <summary>
/// The <c>type</c> field of an xs_wire message (Xen's <c>enum xsd_sockmsg_type</c>). Numbers are fixed by
/// the wire protocol; 20 (the removed XS_RESTRICT) is deliberately absent.
/// </summary>
public enum XsMessageType : uint
{
    /// <summary>CONTROL (formerly DEBUG): implementation-specific commands such as <c>print</c> or <c>help</c>.</summary>
    Control = 0,
    Directory = 1,
    Read = 2,
    GetPerms = 3,
    Watch = 4,
    Unwatch = 5,
    TransactionStart = 6,
    TransactionEnd = 7,
    Introduce = 8,
    Release = 9,
    GetDomainPath = 10,
    Write = 11,
    Mkdir = 12,
    Rm = 13,
    SetPerms = 14,
    /// <summary>Unsolicited event sent by the daemon; req_id and tx_id are 0.</summary>
    WatchEvent = 15,
    /// <summary>Reply carrying an errno name such as <c>ENOENT</c> instead of the normal reply.</summary>
    Error = 16,
    IsDomainIntroduced = 17,
    Resume = 18,
    SetTarget = 19,
    ResetWatches = 21,
    DirectoryPart = 22,
    /// <summary>Guaranteed never to be a valid type.</summary>
    Invalid = 0xffff,
}

public static class XsMessageTypes
{
    /// <summary>True for the numbers the protocol defines (including WATCH_EVENT and ERROR, which only the daemon sends).</summary>
    public static bool IsDefined(XsMessageType type) => type switch
    {
        <= XsMessageType.SetTarget => true,
        XsMessageType.ResetWatches or XsMessageType.DirectoryPart => true,
        _ => false,
    };

    /// <summary>Wire name as used in Xen's documentation and logs, e.g. <c>TRANSACTION_START</c>.</summary>
    public static string Name(XsMessageType type) => type switch
    {
        XsMessageType.Control => "CONTROL",
        XsMessageType.Directory => "DIRECTORY",
        XsMessageType.Read => "READ",
        XsMessageType.GetPerms => "GET_PERMS",
        XsMessageType.Watch => "WATCH",
        XsMessageType.Unwatch => "UNWATCH",
        XsMessageType.TransactionStart => "TRANSACTION_START",
        XsMessageType.TransactionEnd => "TRANSACTION_END",
        XsMessageType.Introduce => "INTRODUCE",
        XsMessageType.Release => "RELEASE",
        XsMessageType.GetDomainPath => "GET_DOMAIN_PATH",
        XsMessageType.Write => "WRITE",
        XsMessageType.Mkdir => "MKDIR",
        XsMessageType.Rm => "RM",
        XsMessageType.SetPerms => "SET_PERMS",
        XsMessageType.WatchEvent => "WATCH_EVENT",
        XsMessageType.Error => "ERROR",
        XsMessageType.IsDomainIntroduced => "IS_DOMAIN_INTRODUCED",
        XsMessageType.Resume => "RESUME",
        XsMessageType.SetTarget => "SET_TARGET",
        XsMessageType.ResetWatches => "RESET_WATCHES",
        XsMessageType.DirectoryPart => "DIRECTORY_PART",
        _ => $"type {(uint)type}",
    };
}
