using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace BlkTapCtrl.Vhd.Platform;

/// <summary>
/// The few POSIX calls .NET does not expose: the size of a block device (lseek to the end, because
/// fstat reports 0 for devices), whether a path is a block device, and realpath for canonical names.
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
