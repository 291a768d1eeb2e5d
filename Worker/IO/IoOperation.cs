namespace BlkTapCtrl.Worker.IO;

public enum IoOperation : byte
{
    Read = 0,
    Write = 1,
    /// <summary>fdatasync of the fd (NBD flush); never merged.</summary>
    FlushData = 2,
}
