using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace BlkTapCtrl.Vhd.Platform;

/// <summary>
/// The few POSIX calls .NET does not expose: the size of a block device (lseek to the end, because
/// fstat reports 0 for devices), whether a path is a block device, realpath for canonical names, and
/// pwritev over two spans (RandomAccess's gathered write takes only heap memory).
/// </summary>
internal static partial class NativeFile
{
    private const int SeekEnd = 2;

    [LibraryImport("libc", SetLastError = true)]
    private static partial long lseek(int fd, long offset, int whence);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint realpath(string path, nint resolved);

    [LibraryImport("libc")]
    private static partial void free(nint p);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial nint pwritev(int fd, IoVec* iov, int iovcnt, long offset);

    private unsafe struct IoVec
    {
        public byte* Base;
        public nuint Length;
    }

    private const int EINTR = 4;

    /// <summary>
    /// Writes <paramref name="first"/> then <paramref name="second"/> contiguously at <paramref name="offset"/>
    /// with one pwritev, so metadata that sits right before data (a block's bitmap) costs no extra call.
    /// </summary>
    public static unsafe void WriteGather(SafeFileHandle handle, ReadOnlySpan<byte> first, ReadOnlySpan<byte> second, long offset)
    {
        long total = (long)first.Length + second.Length;
        long done = 0;
        bool added = false;
        handle.DangerousAddRef(ref added);
        try
        {
            int fd = (int)handle.DangerousGetHandle();
            fixed (byte* p0 = first)
            fixed (byte* p1 = second)
            {
                var iov = stackalloc IoVec[2];
                while (done < total)
                {
                    // Rebuild the vector past what is already written (a short write is legal, if rare).
                    int n = 0;
                    if (done < first.Length)
                        iov[n++] = new IoVec { Base = p0 + done, Length = (nuint)(first.Length - done) };
                    long inSecond = Math.Max(0, done - first.Length);
                    if (inSecond < second.Length)
                        iov[n++] = new IoVec { Base = p1 + inSecond, Length = (nuint)(second.Length - inSecond) };
                    nint written = pwritev(fd, iov, n, offset + done);
                    if (written < 0)
                    {
                        int errno = Marshal.GetLastPInvokeError();
                        if (errno == EINTR)
                            continue;
                        throw new IOException($"pwritev of {total} bytes at offset {offset} failed: errno {errno}", errno);
                    }
                    if (written == 0)
                        throw new IOException($"pwritev of {total} bytes at offset {offset} wrote nothing after {done} bytes");
                    done += written;
                }
            }
        }
        finally
        {
            if (added) handle.DangerousRelease();
        }
    }

    /// <summary>Size of an open file or block device in bytes.</summary>
    public static long Length(SafeFileHandle handle)
    {
        bool added = false;
        handle.DangerousAddRef(ref added);
        try
        {
            long end = lseek((int)handle.DangerousGetHandle(), 0, SeekEnd);
            if (end < 0)
                throw new IOException($"lseek failed: errno {Marshal.GetLastPInvokeError()}");
            return end;
        }
        finally
        {
            if (added) handle.DangerousRelease();
        }
    }

    /// <summary>
    /// True for block devices (the primary footer is then the device's last sector). Device nodes live
    /// in /dev, and there a "file" whose lseek size differs from its stat size is a device.
    /// </summary>
    public static bool IsBlockDevice(string path)
    {
        var full = Canonical(path);
        if (full == null || !full.StartsWith("/dev/", StringComparison.Ordinal))
            return false;
        try
        {
            using var h = File.OpenHandle(full, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            return new FileInfo(full).Length != Length(h) || Length(h) > 0;
        }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }

    /// <summary>realpath(3): absolute, symlinks resolved; null when the path does not exist.</summary>
    public static string? Canonical(string path)
    {
        nint p = realpath(path, 0);
        if (p == 0)
            return null;
        try { return Marshal.PtrToStringUTF8(p); }
        finally { free(p); }
    }
}
