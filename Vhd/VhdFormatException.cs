namespace BlkTapCtrl.Vhd;

/// <summary>
/// The one error type of the VHD library: a structure on disk (or an argument describing one) is
/// not acceptable. <see cref="Field"/> names what was checked and <see cref="Value"/> what was found,
/// so a log line alone tells an operator which byte of which file is wrong. <see cref="Errno"/> is the
/// positive errno the original libvhd returned for the same case (vhd-util exits with it).
/// </summary>
public sealed class VhdFormatException : Exception
{
    public string Field { get; }
    public string Value { get; }
    public int Errno { get; }

    public VhdFormatException(string field, object? value, string problem, int errno = Errnos.EINVAL, Exception? inner = null)
        : base($"{field} = {Format(value)}: {problem}", inner)
    {
        Field = field;
        Value = Format(value);
        Errno = errno;
    }

    private static string Format(object? value) => value switch
    {
        null => "(none)",
        uint u => $"0x{u:x8}",
        byte[] b => Convert.ToHexString(b),
        _ => value.ToString() ?? "",
    };
}

/// <summary>The errno numbers the library reports (Linux values, as the original's return codes).</summary>
public static class Errnos
{
    public const int EPERM = 1, ENOENT = 2, EIO = 5, EBADF = 9, ENOMEM = 12, EACCES = 13, EBUSY = 16, EEXIST = 17,
        EINVAL = 22, EFBIG = 27, ENOSPC = 28, EROFS = 30, ERANGE = 34, ELOOP = 40, ENODATA = 61, EOPNOTSUPP = 95;
}
