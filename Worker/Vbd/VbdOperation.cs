namespace BlkTapCtrl.Worker.Vbd;

/// <summary>What a frontend asks of the disk. Values of Read/Write match blkif's op byte.</summary>
public enum VbdOperation : byte
{
    Read = 0,
    Write = 1,
    /// <summary>Make completed writes durable (NBD FLUSH). No segments; the leaf image syncs.</summary>
    Flush = 2,
}
