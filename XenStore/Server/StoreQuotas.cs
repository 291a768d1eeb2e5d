namespace BlkTapCtrl.XenStore.Server;

/// <summary>
/// Limits that keep one client from exhausting the daemon. Exceeding a node, size, watch or transaction
/// quota fails that request (ENOSPC, or E2BIG for a too-large value); exceeding the output limits
/// disconnects the client, which the daemon logs.
/// </summary>
public sealed record StoreQuotas
{
    /// <summary>Nodes a domain may own (all socket clients are dom0, so this also bounds the whole tree).</summary>
    public int NodesPerDomain { get; init; } = 1_000_000;

    /// <summary>Largest value of a node, in bytes.</summary>
    public int NodeSize { get; init; } = 4096;

    /// <summary>Watches one connection may hold.</summary>
    public int WatchesPerConnection { get; init; } = 16384;

    /// <summary>Transactions one connection may have open.</summary>
    public int TransactionsPerConnection { get; init; } = 1024;

    /// <summary>
    /// Replies a connection may have queued unsent: beyond it the daemon stops reading that connection's
    /// requests until it reads its replies (so a client that only writes slows only itself).
    /// </summary>
    public int OutstandingRequestsPerConnection { get; init; } = 1024;

    /// <summary>Bytes of unsent replies and watch events after which a client that does not read is disconnected.</summary>
    public int OutputBytesPerConnection { get; init; } = 8 * 1024 * 1024;
}
