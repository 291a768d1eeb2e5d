using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace BlkTapCtrl.Bench;

/// <summary>
/// Drops a file's clean pages from the page cache (posix_fadvise DONTNEED after fdatasync), so the next read
/// of it comes from the device — the cold-cache case. Per file and unprivileged, unlike drop_caches.
/// </summary>
internal static partial class PageCache
{
    private const int PosixFadvDontNeed = 4;

    [LibraryImport("libc", EntryPoint = "posix_fadvise")]
    private static partial int PosixFadvise(SafeFileHandle fd, long offset, long length, int advice);

    public static void Drop(string path)
    {
        using var h = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite);
        RandomAccess.FlushToDisk(h); // dirty pages are not dropped; write them back first
        int err = PosixFadvise(h, 0, 0, PosixFadvDontNeed);
        if (err != 0) throw new IOException($"posix_fadvise(DONTNEED) on {path} failed: errno {err}", err);
    }
}
