namespace BlkTapCtrl.Worker.Interop;

/// <summary>Linux errno values the worker uses; requests carry them negated, as blktap does.</summary>
public static class Errno
{
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int EINTR = 4;
    public const int EIO = 5;
    public const int ENXIO = 6;
    public const int EBADF = 9;
    public const int EAGAIN = 11;
    public const int ENOMEM = 12;
    public const int EBUSY = 16;
    public const int EEXIST = 17;
    public const int EINVAL = 22;
    public const int EFBIG = 27;
    public const int ENOSPC = 28;
    public const int EROFS = 30;
    public const int ENOSYS = 38;
    public const int EOPNOTSUPP = 95;
    public const int ESTALE = 116;

    /// <summary>Name of an errno for messages ("EIO"), or the number when it is not one of ours.</summary>
    public static string Name(int errno) => Math.Abs(errno) switch
    {
        EPERM => "EPERM", ENOENT => "ENOENT", EINTR => "EINTR", EIO => "EIO", ENXIO => "ENXIO", EBADF => "EBADF",
        EAGAIN => "EAGAIN", ENOMEM => "ENOMEM", EBUSY => "EBUSY", EEXIST => "EEXIST", EINVAL => "EINVAL",
        EFBIG => "EFBIG", ENOSPC => "ENOSPC", EROFS => "EROFS", ENOSYS => "ENOSYS", EOPNOTSUPP => "EOPNOTSUPP",
        ESTALE => "ESTALE",
        var other => other.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}
