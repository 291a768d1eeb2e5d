using BlkTapCtrl.Protocol.XenStore;

namespace BlkTapCtrl.XenStore.Server;

/// <summary>
/// One client of the store as the engine sees it: its domain, its transactions and watches, and where its
/// replies and events go. A socket connection implements it; unit tests use an in-memory one.
/// </summary>
public abstract class ClientSession
{
    private static int s_lastId;

    protected ClientSession(uint domId)
    {
        DomId = domId;
        Home = XsPath.DomainHome(domId);
        Id = Interlocked.Increment(ref s_lastId);
    }

    /// <summary>A number unique in this process, for logs.</summary>
    public int Id { get; }

    /// <summary>The domain the client acts as; socket clients are dom0 (privileged).</summary>
    public uint DomId { get; }

    /// <summary>Base of relative paths: <c>/local/domain/&lt;domid&gt;</c>.</summary>
    public string Home { get; }

    internal Dictionary<uint, StoreTransaction> Transactions { get; } = [];

    internal int WatchCount { get; set; }

    /// <summary>Set once the engine has asked for a disconnect; further events are not queued.</summary>
    public string? DisconnectReason { get; private set; }

    /// <summary>
    /// Queues one frame for the client. Returns false when the client's queue is full: the engine then
    /// disconnects it. Called with the engine's lock held, so it must never block.
    /// </summary>
    protected internal abstract bool Send(XsHeader header, ReadOnlySpan<byte> payload);

    /// <summary>
    /// Sends what <see cref="Send"/> queued, without blocking: the engine calls it, outside its lock, for
    /// every other client a request gave watch events to, so events leave from the handling path with no
    /// wake-up of a writer. Transports that send in <see cref="Send"/> itself need nothing here.
    /// </summary>
    protected internal virtual void SendQueuedNow()
    {
    }

    /// <summary>Set by the watch registry when an event was queued and the session still needs a send.</summary>
    internal bool AwaitingSend { get; set; }

    /// <summary>Asks the transport to drop the client; the reason is logged.</summary>
    protected abstract void OnDisconnectRequested(string reason);

    internal void RequestDisconnect(string reason)
    {
        if (DisconnectReason != null) return;
        DisconnectReason = reason;
        OnDisconnectRequested(reason);
    }
}
