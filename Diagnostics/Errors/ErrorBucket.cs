namespace BlkTapCtrl.Diagnostics.Errors;

/// <summary>All occurrences of one (errno, origin) error: the first message and when it kept happening.</summary>
public sealed class ErrorBucket
{
    /// <summary>The first message is kept up to this many characters (as the original did).</summary>
    public const int MaxMessageChars = 512;

    internal ErrorBucket(int errno, string origin, string firstMessage)
    {
        Errno = errno;
        Origin = origin;
        FirstMessage = firstMessage;
    }

    public int Errno { get; }

    public string Origin { get; }

    public string FirstMessage { get; }

    /// <summary>When the error happened: count, first (min), last (max), mean and spread.</summary>
    public TimevalDispersion Occurrences { get; } = new();
}
