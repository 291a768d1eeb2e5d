namespace BlkTapCtrl.Protocol.Nbd;

/// <summary>Handshake flags the server sends after the greeting magics (16 bits).</summary>
[Flags]
public enum NbdHandshakeFlags : ushort
{
    None = 0,
    FixedNewstyle = 1 << 0,
    NoZeroes = 1 << 1,
}

/// <summary>Client flags answering the handshake flags (32 bits); any other bit must end the session.</summary>
[Flags]
public enum NbdClientFlags : uint
{
    None = 0,
    FixedNewstyle = 1 << 0,
    NoZeroes = 1 << 1,
}

/// <summary>Per-export transmission flags (16 bits) sent with the export size.</summary>
[Flags]
public enum NbdTransmissionFlags : ushort
{
    None = 0,
    HasFlags = 1 << 0,
    ReadOnly = 1 << 1,
    SendFlush = 1 << 2,
    SendFua = 1 << 3,
    Rotational = 1 << 4,
    SendTrim = 1 << 5,
    SendWriteZeroes = 1 << 6,
    SendDf = 1 << 7,
    CanMultiConn = 1 << 8,
    SendResize = 1 << 9,
    SendCache = 1 << 10,
    SendFastZero = 1 << 11,
}

/// <summary>Flags on a transmission request (16 bits); which are valid depends on the command.</summary>
[Flags]
public enum NbdCommandFlags : ushort
{
    None = 0,
    Fua = 1 << 0,
    NoHole = 1 << 1,
    DontFragment = 1 << 2,
    RequestOne = 1 << 3,
    FastZero = 1 << 4,
}

/// <summary>Flags on a structured reply chunk.</summary>
[Flags]
public enum NbdReplyFlags : ushort
{
    None = 0,
    Done = 1 << 0,
}

/// <summary>Status flags of a <c>base:allocation</c> block descriptor.</summary>
[Flags]
public enum NbdAllocationFlags : uint
{
    /// <summary>Allocated data (or status unknown).</summary>
    Data = 0,
    /// <summary>Not allocated in the backing storage.</summary>
    Hole = 1 << 0,
    /// <summary>Reads as zeroes.</summary>
    Zero = 1 << 1,
}
