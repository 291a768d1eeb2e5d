using System.Runtime.InteropServices;

namespace BlkTapCtrl.Diagnostics.Native;

/// <summary>struct iovec: one buffer of a scatter/gather send or receive.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct IoVec
{
    public void* Base;
    public nuint Length;
}

/// <summary>
/// struct msghdr (x86-64 glibc layout; natural alignment pads after the two 32-bit fields). One declaration for
/// every caller: the syslog client's sendmmsg here, the worker's NBD sendmsg.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct MsgHdr
{
    public void* Name;
    public uint NameLength;
    public IoVec* Iov;
    public nuint IovLength;
    public void* Control;
    public nuint ControlLength;
    public int Flags;
}
