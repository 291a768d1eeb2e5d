using System.Runtime.InteropServices;
using BlkTapCtrl.Diagnostics.Native;

namespace BlkTapCtrl.Worker.Interop;

/// <summary>Socket calls of the frontends' hot path: non-blocking recv and scatter/gather sendmsg.</summary>
internal static unsafe partial class LibC
{
    public const int MSG_DONTWAIT = 0x40, MSG_NOSIGNAL = 0x4000;

    [LibraryImport(Lib, EntryPoint = "recv", SetLastError = true)]
    public static partial nint recv(int fd, void* buf, nint length, int flags);

    [LibraryImport(Lib, EntryPoint = "send", SetLastError = true)]
    public static partial nint send(int fd, void* buf, nint length, int flags);

    [LibraryImport(Lib, EntryPoint = "sendmsg", SetLastError = true)]
    public static partial nint sendmsg(int fd, MsgHdr* message, int flags);

    [LibraryImport(Lib, EntryPoint = "recvmsg", SetLastError = true)]
    public static partial nint recvmsg(int fd, MsgHdr* message, int flags);
}
