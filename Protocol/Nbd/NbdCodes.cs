namespace BlkTapCtrl.Protocol.Nbd;

/// <summary>Options a client sends during option haggling.</summary>
public enum NbdOption : uint
{
    ExportName = 1,
    Abort = 2,
    List = 3,
    PeekExport = 4,
    StartTls = 5,
    Info = 6,
    Go = 7,
    StructuredReply = 8,
    ListMetaContext = 9,
    SetMetaContext = 10,
    ExtendedHeaders = 11,
}

/// <summary>Option reply types; errors have bit 31 set.</summary>
public enum NbdOptionReplyType : uint
{
    Ack = 1,
    Server = 2,
    Info = 3,
    MetaContext = 4,
    ErrorUnsupported = 0x8000_0001,
    ErrorPolicy = 0x8000_0002,
    ErrorInvalid = 0x8000_0003,
    ErrorPlatform = 0x8000_0004,
    ErrorTlsRequired = 0x8000_0005,
    ErrorUnknown = 0x8000_0006,
    ErrorShutdown = 0x8000_0007,
    ErrorBlockSizeRequired = 0x8000_0008,
    ErrorTooBig = 0x8000_0009,
}

/// <summary>Information items of NBD_REP_INFO (INFO/GO options).</summary>
public enum NbdInfoType : ushort
{
    Export = 0,
    Name = 1,
    Description = 2,
    BlockSize = 3,
}

/// <summary>Transmission commands.</summary>
public enum NbdCommand : ushort
{
    Read = 0,
    Write = 1,
    Disconnect = 2,
    Flush = 3,
    Trim = 4,
    Cache = 5,
    WriteZeroes = 6,
    BlockStatus = 7,
    Resize = 8,
}

/// <summary>Structured reply chunk types; error chunks have bit 15 set.</summary>
public enum NbdReplyType : ushort
{
    None = 0,
    OffsetData = 1,
    OffsetHole = 2,
    BlockStatus = 5,
    Error = 0x8001,
    ErrorOffset = 0x8002,
}

/// <summary>
/// The error values NBD allows on the wire. They equal Linux errno values, but the protocol restricts the
/// set: map anything else (see <see cref="FromErrno"/>).
/// </summary>
public enum NbdError : uint
{
    None = 0,
    NotPermitted = 1,    // EPERM
    IO = 5,              // EIO
    NoMemory = 12,       // ENOMEM
    Invalid = 22,        // EINVAL
    NoSpace = 28,        // ENOSPC
    Overflow = 75,       // EOVERFLOW
    NotSupported = 95,   // ENOTSUP
    Shutdown = 108,      // ESHUTDOWN
}

public static class NbdErrors
{
    /// <summary>
    /// Maps a (positive or negative) Linux errno to the NBD error the protocol allows: EDQUOT and EFBIG
    /// become ENOSPC as proto.md asks, EROFS becomes EPERM, unknown values become EIO.
    /// </summary>
    public static NbdError FromErrno(int errno)
    {
        errno = Math.Abs(errno);
        return errno switch
        {
            0 => NbdError.None,
            1 or 30 => NbdError.NotPermitted,       // EPERM, EROFS
            12 => NbdError.NoMemory,
            22 => NbdError.Invalid,
            28 or 27 or 122 => NbdError.NoSpace,    // ENOSPC, EFBIG, EDQUOT
            75 => NbdError.Overflow,
            95 => NbdError.NotSupported,
            108 => NbdError.Shutdown,
            _ => NbdError.IO,
        };
    }
}
