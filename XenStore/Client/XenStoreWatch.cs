using System.Threading.Channels;

namespace BlkTapCtrl.XenStore.Client;

/// <summary>
/// A registered watch. Its events queue here without bound, so a slow consumer never delays replies to
/// other calls; read them with <see cref="ReadAllAsync"/> or <see cref="Events"/>. The stream ends when the
/// watch is disposed (UNWATCH) or the client is disposed; it survives reconnects.
/// </summary>
public sealed class XenStoreWatch : IAsyncDisposable
{
    private readonly XenStoreClient _client;
    private readonly Channel<XenStoreWatchEvent> _events =
        Channel.CreateUnbounded<XenStoreWatchEvent>(new UnboundedChannelOptions { SingleWriter = true });

    internal XenStoreWatch(XenStoreClient client, string path, string token)
    {
        _client = client;
        Path = path;
        Token = token;
    }

    /// <summary>The watched path as registered (absolute, relative or special).</summary>
    public string Path { get; }

    public string Token { get; }

    public ChannelReader<XenStoreWatchEvent> Events => _events.Reader;

    public IAsyncEnumerable<XenStoreWatchEvent> ReadAllAsync(CancellationToken ct = default) => _events.Reader.ReadAllAsync(ct);

    internal void Deliver(XenStoreWatchEvent e) => _events.Writer.TryWrite(e);

    internal void Complete() => _events.Writer.TryComplete();

    /// <summary>UNWATCH and end the event stream.</summary>
    public async ValueTask DisposeAsync() => await _client.UnwatchAsync(this, CancellationToken.None).ConfigureAwait(false);
}
