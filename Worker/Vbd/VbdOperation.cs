namespace BlkTapCtrl.Worker.Vbd;

/// <summary>What a frontend asks of the disk. Values of Read/Write match blkif's op byte.</summary>
public enum VbdOperation : byte
{
    Read = 0,
    Write = 1,
    /// <summary>Make completed writes durable (NBD FLUSH). No segments; the leaf image syncs.</summary>
    Flush = 2,
}

public static class VbdOperationNames
{
    /// <summary>The lower-case name log lines use, as a constant string (formatting an enum would box it).</summary>
    public static string LogName(this VbdOperation operation) => operation switch
    {
        VbdOperation.Read => "read",
        VbdOperation.Write => "write",
        VbdOperation.Flush => "flush",
        _ => "unknown",
    };
}
