using System.Runtime.InteropServices;

namespace BlkTapCtrl.Worker.Interop;

/// <summary>Socket calls of the frontends' hot path: non-blocking recv and scatter/gather sendmsg.</summary>
internal static unsafe partial class LibC
{
    public const int MSG_DONTWAIT = 0x40, MSG_NOSIGNAL = 0x4000;

    [StructLayout(LayoutKind.Sequential)]
    public struct IoVec
    {
        public void* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct MsgHdr
    {
        public void* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    [LibraryImport(Lib, EntryPoint = "recv", SetLastError = true)]
    public static partial nint recv(int fd, void* buf, nint length, int flags);

    [LibraryImport(Lib, EntryPoint = "send", SetLastError = true)]
    public static partial nint send(int fd, void* buf, nint length, int flags);

    [LibraryImport(Lib, EntryPoint = "sendmsg", SetLastError = true)]
    public static partial nint sendmsg(int fd, MsgHdr* message, int flags);

    [LibraryImport(Lib, EntryPoint = "recvmsg", SetLastError = true)]
    public static partial nint recvmsg(int fd, MsgHdr* message, int flags);
}
