using BlkTapCtrl.Protocol.XenStore;

namespace BlkTapCtrl.XenStore.Client;

/// <summary>
/// An open transaction: every operation reads and writes the snapshot taken at start. End it with
/// <see cref="CommitAsync"/> (false means EAGAIN: someone changed what it touched; start over) or
/// <see cref="AbortAsync"/>. Disposing an unended transaction aborts it.
/// </summary>
public sealed class XenStoreTransaction : XenStoreOperations, IAsyncDisposable
{
    private readonly XenStoreClient _client;
    private readonly XenStoreConnection _connection;
    private readonly uint _id;
    private int _ended;

    internal XenStoreTransaction(XenStoreClient client, XenStoreConnection connection, uint id)
    {
        _client = client;
        _connection = connection;
        _id = id;
    }

    private protected override XenStoreClient Owner
    {
        get
        {
            if (Volatile.Read(ref _ended) != 0)
                throw new InvalidOperationException($"xenstore transaction {_id} has already ended");
            // A transaction lives on the connection that started it; after a reconnect it no longer exists.
            if (!ReferenceEquals(_client.Connection(), _connection) || !_connection.IsAlive)
                throw new XenStoreConnectionLostException($"xenstore transaction {_id} was lost with its connection");
            return _client;
        }
    }

    public override uint TransactionId => _id;

    /// <summary>True once committed or aborted.</summary>
    public bool IsEnded => Volatile.Read(ref _ended) != 0;

    /// <summary>TRANSACTION_END T: true when committed, false when the daemon refused with EAGAIN.</summary>
    public async Task<bool> CommitAsync(CancellationToken ct = default)
    {
        var task = RequestAsync(XsMessageType.TransactionEnd, ["T"], ct);
        Volatile.Write(ref _ended, 1);
        try
        {
            await task.ConfigureAwait(false);
            return true;
        }
        catch (XenStoreException e) when (e.Error == XsError.EAGAIN)
        {
            return false;
        }
    }

    /// <summary>TRANSACTION_END F: discards every change made in the transaction.</summary>
    public async Task AbortAsync(CancellationToken ct = default)
    {
        var task = RequestAsync(XsMessageType.TransactionEnd, ["F"], ct);
        Volatile.Write(ref _ended, 1);
        await task.ConfigureAwait(false);
    }

    internal async Task AbortQuietlyAsync()
    {
        if (IsEnded) return;
        try
        {
            await AbortAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is XenStoreException or XenStoreConnectionLostException or TimeoutException or InvalidOperationException)
        {
            // Nothing to undo: a failed abort leaves the daemon to drop the transaction with the connection.
        }
    }

    public async ValueTask DisposeAsync() => await AbortQuietlyAsync().ConfigureAwait(false);
}
