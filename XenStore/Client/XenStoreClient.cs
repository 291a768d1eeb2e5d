using System.Collections.Concurrent;
using System.Globalization;
using BlkTapCtrl.Protocol.XenStore;

namespace BlkTapCtrl.XenStore.Client;

/// <summary>
/// An asynchronous XenStore client multiplexing many calls over one connection: each call gets its own
/// req_id and completes when the matching reply arrives, in whatever order. Watch events go to the
/// <see cref="XenStoreWatch"/> registered for their token and never hold up replies. When the connection
/// breaks, every pending call fails with <see cref="XenStoreConnectionLostException"/>;
/// <see cref="ReconnectAsync"/> (or <see cref="XenStoreClientOptions.ReconnectAutomatically"/>) opens a new
/// connection and registers every live watch again (each then fires its initial event once more).
/// Thread-safe: any number of calls may be in flight from any threads.
/// </summary>
public sealed class XenStoreClient : XenStoreOperations, IAsyncDisposable
{
    private readonly XenStoreClientOptions _options;
    private readonly ConcurrentDictionary<string, XenStoreWatch> _watches = new();
    private readonly SemaphoreSlim _reconnectLock = new(1, 1);
    private volatile XenStoreConnection? _connection;
    private int _nextWatchToken;
    private volatile bool _disposed;

    private XenStoreClient(XenStoreClientOptions options)
    {
        _options = options;
    }

    /// <summary>
    /// Connects to xenstored: to <see cref="XenStoreClientOptions.Path"/>, or by libxenstore's rules
    /// (<c>XENSTORED_PATH</c>, <c>/var/run/xenstored/socket</c>, then <c>/dev/xen/xenbus</c>).
    /// </summary>
    public static async Task<XenStoreClient> ConnectAsync(XenStoreClientOptions? options = null, CancellationToken ct = default)
    {
        var client = new XenStoreClient(options ?? new XenStoreClientOptions());
        try
        {
            client._connection = await client.OpenAsync(ct).ConfigureAwait(false);
        }
        catch
        {
            await client.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        return client;
    }

    /// <summary>Connects to the unix socket or device at <paramref name="path"/>.</summary>
    public static Task<XenStoreClient> ConnectAsync(string path, CancellationToken ct = default) =>
        ConnectAsync(new XenStoreClientOptions { Path = path }, ct);

    private protected override XenStoreClient Owner => this;

    public override uint TransactionId => 0;

    /// <summary>Where the current (or last) connection goes.</summary>
    public string? Target => _connection?.Target;

    public bool IsConnected => _connection?.IsAlive == true;

    /// <summary>Raised (on a pool thread) when the connection breaks; the argument says why.</summary>
    public event Action<Exception>? ConnectionLost;

    /// <summary>Raised after a reconnect (manual or automatic) has re-registered every watch.</summary>
    public event Action? Reconnected;

    /// <summary>
    /// WATCH: registers a recursive watch on <paramref name="path"/> (or a special path such as
    /// <c>@releaseDomain</c>). The daemon fires once right away with the path itself, then for every change at
    /// or below it. Dispose the returned watch to UNWATCH. <paramref name="token"/> defaults to a unique one.
    /// </summary>
    public async Task<XenStoreWatch> WatchAsync(string path, string? token = null, CancellationToken ct = default)
    {
        if (!XsPath.IsSpecial(path))
        {
            var problem = XsPath.Problem(path);
            if (problem != null) throw new ArgumentException($"invalid xenstore watch path '{path}': {problem}", nameof(path));
        }
        token ??= "t" + Interlocked.Increment(ref _nextWatchToken).ToString(CultureInfo.InvariantCulture);
        var watch = new XenStoreWatch(this, path, token);
        if (!_watches.TryAdd(token, watch))
            throw new ArgumentException($"a watch with token '{token}' is already registered on this client", nameof(token));
        try
        {
            await RequestAsync(XsMessageType.Watch, [path, token], ct).ConfigureAwait(false);
        }
        catch
        {
            _watches.TryRemove(token, out _);
            watch.Complete();
            throw;
        }
        return watch;
    }

    internal async Task UnwatchAsync(XenStoreWatch watch, CancellationToken ct)
    {
        if (!_watches.TryRemove(watch.Token, out _)) return;
        watch.Complete();
        if (IsConnected)
        {
            try
            {
                await RequestAsync(XsMessageType.Unwatch, [watch.Path, watch.Token], ct).ConfigureAwait(false);
            }
            catch (XenStoreConnectionLostException) { /* the daemon forgets a dead connection's watches */ }
        }
    }

    /// <summary>TRANSACTION_START: a snapshot in which reads and writes happen until commit or abort.</summary>
    public async Task<XenStoreTransaction> StartTransactionAsync(CancellationToken ct = default)
    {
        var connection = Connection();
        var reply = await RequestAsync(XsMessageType.TransactionStart, [""], ct).ConfigureAwait(false);
        return new XenStoreTransaction(this, connection, XsPayload.TransactionId(reply.Payload));
    }

    /// <summary>
    /// Runs <paramref name="body"/> in a transaction and commits it, starting over from a fresh transaction
    /// whenever the commit (or any call inside) fails with EAGAIN. If the body calls
    /// <see cref="XenStoreTransaction.AbortAsync"/> nothing is committed and the result is false. If it throws,
    /// the transaction is aborted and the exception propagates.
    /// </summary>
    /// <returns>True when committed.</returns>
    public async Task<bool> RunInTransactionAsync(Func<XenStoreTransaction, Task> body, CancellationToken ct = default)
    {
        var (committed, _) = await RunInTransactionAsync<object?>(async tx =>
        {
            await body(tx).ConfigureAwait(false);
            return null;
        }, ct).ConfigureAwait(false);
        return committed;
    }

    /// <summary>As <see cref="RunInTransactionAsync(Func{XenStoreTransaction, Task}, CancellationToken)"/>, returning the body's result of the committed attempt.</summary>
    public async Task<(bool Committed, T Result)> RunInTransactionAsync<T>(Func<XenStoreTransaction, Task<T>> body, CancellationToken ct = default)
    {
        for (int attempt = 0; ; attempt++)
        {
            ct.ThrowIfCancellationRequested();
            var tx = await StartTransactionAsync(ct).ConfigureAwait(false);
            T result;
            try
            {
                result = await body(tx).ConfigureAwait(false);
            }
            catch (XenStoreException e) when (e.Error == XsError.EAGAIN && attempt < _options.MaxTransactionRetries)
            {
                await tx.AbortQuietlyAsync().ConfigureAwait(false);
                continue;
            }
            catch
            {
                await tx.AbortQuietlyAsync().ConfigureAwait(false);
                throw;
            }
            if (tx.IsEnded) return (false, result);
            if (await tx.CommitAsync(ct).ConfigureAwait(false)) return (true, result);
            if (attempt >= _options.MaxTransactionRetries)
                throw new XenStoreException(XsError.EAGAIN, XsMessageType.TransactionEnd, null);
            await BackOffAsync(attempt, ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Waits a random, growing time before retrying a conflicted transaction: clients that collided then
    /// spread out instead of colliding again in lock-step (which on a busy counter wastes most attempts).
    /// </summary>
    private static Task BackOffAsync(int attempt, CancellationToken ct)
    {
        if (attempt == 0) return Task.CompletedTask;
        int ceilingMs = Math.Min(1 << Math.Min(attempt, 5), 20);
        return Task.Delay(Random.Shared.Next(0, ceilingMs + 1), ct);
    }

    /// <summary>GET_DOMAIN_PATH: the home path of a domain, <c>/local/domain/&lt;domid&gt;</c>.</summary>
    public async Task<string> GetDomainPathAsync(uint domId, CancellationToken ct = default)
    {
        var reply = await RequestAsync(XsMessageType.GetDomainPath, [Decimal(domId)], ct).ConfigureAwait(false);
        return XsPayload.Strings(reply.Payload, allowUnterminatedLast: true).FirstOrDefault() ?? "";
    }

    /// <summary>IS_DOMAIN_INTRODUCED.</summary>
    public async Task<bool> IsDomainIntroducedAsync(uint domId, CancellationToken ct = default)
    {
        var reply = await RequestAsync(XsMessageType.IsDomainIntroduced, [Decimal(domId)], ct).ConfigureAwait(false);
        return reply.Payload.Length > 0 && reply.Payload[0] == (byte)'T';
    }

    /// <summary>INTRODUCE: tells the daemon about a domain (fires <c>@introduceDomain</c>).</summary>
    public Task IntroduceDomainAsync(uint domId, ulong mfn, uint eventChannel, CancellationToken ct = default) =>
        RequestAsync(XsMessageType.Introduce, [Decimal(domId), mfn.ToString(CultureInfo.InvariantCulture), Decimal(eventChannel)], ct);

    /// <summary>RELEASE: the daemon forgets a domain (fires <c>@releaseDomain</c>).</summary>
    public Task ReleaseDomainAsync(uint domId, CancellationToken ct = default) =>
        RequestAsync(XsMessageType.Release, [Decimal(domId)], ct);

    /// <summary>RESET_WATCHES: drops every watch and transaction of this connection at the daemon (and here).</summary>
    public async Task ResetWatchesAsync(CancellationToken ct = default)
    {
        await RequestAsync(XsMessageType.ResetWatches, [""], ct).ConfigureAwait(false);
        foreach (var token in _watches.Keys)
        {
            if (_watches.TryRemove(token, out var w)) w.Complete();
        }
    }

    /// <summary>CONTROL: an implementation-specific command (e.g. <c>help</c>); returns the reply text.</summary>
    public async Task<string> ControlAsync(IReadOnlyList<string> command, CancellationToken ct = default)
    {
        var reply = await RequestAsync(XsMessageType.Control, command, ct).ConfigureAwait(false);
        return System.Text.Encoding.UTF8.GetString(XsPayload.SingleArgument(reply.Payload));
    }

    /// <summary>
    /// Opens a new connection if the current one is broken (a live one is kept) and registers every watch
    /// again. Transactions of the old connection are gone: their calls fail with connection lost.
    /// </summary>
    public async Task ReconnectAsync(CancellationToken ct = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        await _reconnectLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_connection?.IsAlive == true) return;
            if (_connection != null) await _connection.DisposeAsync().ConfigureAwait(false);
            _connection = await OpenAsync(ct).ConfigureAwait(false);
            foreach (var watch in _watches.Values)
                await RequestAsync(XsMessageType.Watch, [watch.Path, watch.Token], ct).ConfigureAwait(false);
        }
        finally
        {
            _reconnectLock.Release();
        }
        Reconnected?.Invoke();
    }

    private Task<XenStoreConnection> OpenAsync(CancellationToken ct) =>
        XenStoreConnection.OpenAsync(_options.Path, DeliverWatchEvent, OnConnectionLost, ct);

    private void DeliverWatchEvent(XenStoreWatchEvent e)
    {
        // Events for a token we no longer know (unwatched while in flight) are dropped.
        if (_watches.TryGetValue(e.Token, out var watch)) watch.Deliver(e);
    }

    private void OnConnectionLost(XenStoreConnection connection, Exception cause)
    {
        if (_disposed) return;
        ConnectionLost?.Invoke(cause);
        if (_options.ReconnectAutomatically) _ = ReconnectInBackgroundAsync();
    }

    private async Task ReconnectInBackgroundAsync()
    {
        var delay = TimeSpan.FromMilliseconds(50);
        while (!_disposed)
        {
            try
            {
                await ReconnectAsync().ConfigureAwait(false);
                if (IsConnected) return;
            }
            catch (Exception e) when (e is not ObjectDisposedException) { }
            await Task.Delay(delay).ConfigureAwait(false);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, _options.MaxReconnectDelay.Ticks));
        }
    }

    internal XenStoreConnection Connection()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _connection ?? throw new XenStoreConnectionLostException("the xenstore client is not connected");
    }

    internal async Task<XenStoreReply> CompleteAsync(XenStoreConnection connection, byte[] frame, int length, uint id,
        XsMessageType type, string? path, CancellationToken ct)
    {
        var reply = await connection.SendAsync(frame, length, id, _options.RequestTimeout, ct).ConfigureAwait(false);
        if (reply.Type == XsMessageType.Error)
            throw new XenStoreException(XsErrors.Parse(reply.Payload), type, path);
        if (reply.Type != type)
            throw new XenStoreConnectionLostException(
                $"xenstored answered {XsMessageTypes.Name(type)} request {id} with {XsMessageTypes.Name(reply.Type)}");
        return reply;
    }

    private static string Decimal(uint value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>Closes the connection; pending calls fail and every watch's event stream ends.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        _disposed = true;
        var connection = _connection;
        if (connection != null) await connection.DisposeAsync().ConfigureAwait(false);
        foreach (var token in _watches.Keys)
        {
            if (_watches.TryRemove(token, out var w)) w.Complete();
        }
    }
}
