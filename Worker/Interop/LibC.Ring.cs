using System.Runtime.InteropServices;

namespace BlkTapCtrl.Worker.Interop;

/// <summary>The kernel blktap ring device's ioctl (reference §3.6).</summary>
internal static unsafe partial class LibC
{
    [LibraryImport(Lib, EntryPoint = "ioctl", SetLastError = true)]
    public static partial int ioctl(int fd, nuint request, nuint argument);
}
