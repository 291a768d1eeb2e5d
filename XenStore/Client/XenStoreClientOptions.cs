namespace BlkTapCtrl.XenStore.Client;

/// <summary>How <see cref="XenStoreClient"/> connects and how long it waits.</summary>
public sealed class XenStoreClientOptions
{
    /// <summary>The unix socket used when neither <see cref="Path"/> nor <c>XENSTORED_PATH</c> says otherwise.</summary>
    public const string DefaultSocketPath = "/var/run/xenstored/socket";

    /// <summary>The kernel's xenbus character device, tried when the socket cannot be reached.</summary>
    public const string XenbusDevicePath = "/dev/xen/xenbus";

    /// <summary>
    /// Where to connect: a unix socket path or a character device such as <c>/dev/xen/xenbus</c>. Null means
    /// as libxenstore does: <c>$XENSTORED_PATH</c>, else <c>$XENSTORED_RUNDIR/socket</c>, else
    /// <see cref="DefaultSocketPath"/>, falling back to <see cref="XenbusDevicePath"/> if the socket fails.
    /// </summary>
    public string? Path { get; init; }

    /// <summary>A call whose reply has not come within this time fails with <see cref="TimeoutException"/>. Infinite disables.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// When the connection breaks, keep reconnecting in the background (with growing delays up to
    /// <see cref="MaxReconnectDelay"/>) and re-register every watch. Calls made while disconnected still fail.
    /// </summary>
    public bool ReconnectAutomatically { get; init; }

    public TimeSpan MaxReconnectDelay { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Give up on <see cref="XenStoreClient.RunInTransactionAsync(Func{XenStoreTransaction, Task}, CancellationToken)"/> after this many EAGAIN retries.</summary>
    public int MaxTransactionRetries { get; init; } = 1000;

    /// <summary>The connect target that a null <see cref="Path"/> resolves to, following libxenstore's environment rules.</summary>
    public static string DefaultPath()
    {
        var path = Environment.GetEnvironmentVariable("XENSTORED_PATH");
        if (!string.IsNullOrEmpty(path)) return path;
        var rundir = Environment.GetEnvironmentVariable("XENSTORED_RUNDIR");
        if (!string.IsNullOrEmpty(rundir)) return System.IO.Path.Combine(rundir, "socket");
        return DefaultSocketPath;
    }
}
