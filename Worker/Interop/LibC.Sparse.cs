namespace BlkTapCtrl.Worker.Interop;

internal static partial class LibC
{
    /// <summary>lseek whence values for sparse files (allocation queries).</summary>
    public const int SEEK_DATA = 3, SEEK_HOLE = 4;
}
