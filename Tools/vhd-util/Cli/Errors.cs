using BlkTapCtrl.Vhd;

namespace BlkTapCtrl.Tools.VhdUtil.Cli;

/// <summary>Maps library and OS failures to the negative errno the original's functions returned.</summary>
public static class Errors
{
    /// <summary>Negative errno for an exception; the precise message goes to stderr.</summary>
    public static int From(Exception e)
    {
        Console.Error.WriteLine($"vhd-util: {e.Message}");
        return -Errno(e);
    }

    public static int Errno(Exception e) => e switch
    {
        VhdFormatException v => v.Errno,
        FileNotFoundException or DirectoryNotFoundException => Errnos.ENOENT,
        UnauthorizedAccessException => Errnos.EACCES,
        IOException io when (io.HResult & 0xffff) == 28 || io.Message.Contains("No space", StringComparison.Ordinal) => Errnos.ENOSPC,
        IOException => Errnos.EIO,
        OutOfMemoryException => Errnos.ENOMEM,
        _ => Errnos.EINVAL,
    };
}
