using System.Runtime.InteropServices;

namespace BlkTapCtrl.Worker.Interop;

internal static unsafe partial class LibC
{
    public const nint SIG_DFL = 0, SIG_IGN = 1;

    /// <summary>glibc's struct sigaction on x86-64: handler, 128-byte mask, flags, restorer (152 bytes).</summary>
    [StructLayout(LayoutKind.Sequential, Size = 152)]
    public struct SigAction
    {
        public nint Handler;
    }

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int sigaction(int sig, SigAction* act, SigAction* oldact);
}
