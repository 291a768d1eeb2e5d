using System.Net.Sockets;
using BlkTapCtrl.Protocol.XenStore;
using BlkTapCtrl.Testing;

namespace BlkTapCtrl.XenStore.Tests.Client;

/// <summary>
/// A scripted stand-in for xenstored on a real unix socket, for client behaviour our own daemon never shows
/// on purpose: replies out of order, withheld replies, a connection cut mid-call. Each received frame is
/// handed to the test's handler, which answers through <see cref="Peer"/>.
/// </summary>
internal sealed class ScriptedDaemon : IAsyncDisposable
{
    private readonly TempDir _dir = new("xsfake");
    private readonly Socket _listener;
    private readonly Func<Peer, XsHeader, byte[], Task> _handler;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Peer> _peers = [];
    private readonly Task _acceptLoop;

    public ScriptedDaemon(Func<Peer, XsHeader, byte[], Task> handler)
    {
        _handler = handler;
        SocketPath = _dir["socket"];
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(SocketPath));
        _listener.Listen();
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    public string SocketPath { get; }

    public int Connections { get { lock (_peers) return _peers.Count; } }

    public void DropAll()
    {
        lock (_peers)
            foreach (var p in _peers) p.Close();
    }

    private async Task AcceptLoopAsync()
    {
        try
        {
            while (true)
            {
                var s = await _listener.AcceptAsync(_stop.Token);
                var peer = new Peer(s);
                lock (_peers) _peers.Add(peer);
                _ = Task.Run(() => ServeAsync(peer));
            }
        }
        catch (Exception) { }
    }

    private async Task ServeAsync(Peer peer)
    {
        using var frames = new XsFrameReader();
        try
        {
            while (true)
            {
                int n = await peer.Socket.ReceiveAsync(frames.GetFillBuffer(), _stop.Token);
                if (n == 0) return;
                frames.Advance(n);
                while (frames.TryRead(out var h, out var p))
                    await _handler(peer, h, p.ToArray());
            }
        }
        catch (Exception) { }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Dispose();
        DropAll();
        try { await _acceptLoop; } catch (Exception) { }
        _dir.Dispose();
    }

    public sealed class Peer(Socket socket)
    {
        private readonly SemaphoreSlim _sendLock = new(1, 1);

        public Socket Socket { get; } = socket;

        public async Task SendAsync(XsMessageType type, uint requestId, uint txId, ReadOnlyMemory<byte> payload)
        {
            var frame = new byte[16 + payload.Length];
            new XsHeader(type, requestId, txId, (uint)payload.Length).Write(frame);
            payload.CopyTo(frame.AsMemory(16));
            await _sendLock.WaitAsync();
            try { await Socket.SendAsync(frame); }
            finally { _sendLock.Release(); }
        }

        public Task ReplyAsync(XsHeader request, string payload) =>
            SendAsync(request.Type, request.RequestId, request.TransactionId, System.Text.Encoding.UTF8.GetBytes(payload));

        public Task ErrorAsync(XsHeader request, XsError error) =>
            SendAsync(XsMessageType.Error, request.RequestId, request.TransactionId, XsErrors.Payload(error).ToArray());

        public void Close()
        {
            try { Socket.Shutdown(SocketShutdown.Both); } catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
            Socket.Dispose();
        }
    }
}
