namespace BlkTapCtrl.XenStore.Server;

/// <summary>Where the daemon listens and keeps its state.</summary>
public sealed record XenStoreServerOptions
{
    /// <summary>Unix socket to listen on (a stale socket file nobody listens on is replaced).</summary>
    public string SocketPath { get; init; } = "/var/run/xenstored/socket";

    /// <summary>Optional file holding the tree across restarts; loaded at start, saved atomically after changes.</summary>
    public string? StateFile { get; init; }

    /// <summary>How long after a change the state file is written (changes in between are saved together).</summary>
    public TimeSpan StateSaveDelay { get; init; } = TimeSpan.FromMilliseconds(100);

    public StoreQuotas Quotas { get; init; } = new();
}
