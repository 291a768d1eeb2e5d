using System.Collections.Concurrent;
using System.Net.Sockets;
using BlkTapCtrl.Testing;
using BlkTapCtrl.XenStore.Client;
using BlkTapCtrl.XenStore.Server;

namespace BlkTapCtrl.XenStore.Tests.Server;

/// <summary>Our xenstored running in-process on a socket in a private temp dir, with its log captured.</summary>
internal sealed class RunningServer : IAsyncDisposable
{
    private readonly TempDir _dir = new("xsd");

    public RunningServer(StoreQuotas? quotas = null, string? socketPath = null)
    {
        SocketPath = socketPath ?? _dir["socket"];
        Server = new XenStoreServer(new XenStoreServerOptions { SocketPath = SocketPath, Quotas = quotas ?? new StoreQuotas() }, Log.Enqueue);
        Server.Start();
    }

    public XenStoreServer Server { get; }

    public string SocketPath { get; }

    public ConcurrentQueue<string> Log { get; } = new();

    public Task<XenStoreClient> ConnectAsync(TimeSpan? timeout = null) =>
        XenStoreClient.ConnectAsync(new XenStoreClientOptions { Path = SocketPath, RequestTimeout = timeout ?? TimeSpan.FromSeconds(20) });

    public Socket RawConnect()
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        s.Connect(new UnixDomainSocketEndPoint(SocketPath));
        return s;
    }

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        Assert.That(Log.Where(l => l.Contains("internal error")), Is.Empty, "the server hit an internal error");
        _dir.Dispose();
    }
}
