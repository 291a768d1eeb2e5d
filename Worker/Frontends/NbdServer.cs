using System.Net;
using System.Net.Sockets;
using BlkTapCtrl.Worker.IO;
using BlkTapCtrl.Worker.Logging;
using BlkTapCtrl.Worker.Scheduling;

namespace BlkTapCtrl.Worker.Frontends;

/// <summary>
/// The NBD export of one VBD: listening sockets (unix and/or TCP) on the worker's event loop, and the
/// connections accepted from them, any number at once. Loop thread only.
/// </summary>
public sealed class NbdServer : IDisposable
{
    private readonly List<Listener> _listeners = new();
    private readonly List<NbdConnection> _connections = new();
    private readonly WorkerLog _log;
    private AlignedBuffer? _zeroes;
    private bool _disposed;

    private sealed class Listener(Socket socket, NbdEndpoint endpoint)
    {
        public readonly Socket Socket = socket;
        public readonly NbdEndpoint Endpoint = endpoint;
        public int EventId;
    }

    public NbdServer(EventLoop loop, NbdExport export, WorkerLog log)
    {
        Loop = loop;
        Export = export;
        _log = log;
    }

    public EventLoop Loop { get; }
    public NbdExport Export { get; }
    public NbdBufferPool Buffers { get; } = new();
    public IReadOnlyList<NbdConnection> Connections => _connections;

    /// <summary>Connections accepted so far.</summary>
    public long Accepted { get; private set; }

    /// <summary>1 MiB of zeroes, the source of WRITE_ZEROES (read-only: never handed to a read).</summary>
    internal AlignedBuffer ZeroBuffer => _zeroes ??= new AlignedBuffer(1 << 20);

    /// <summary>Starts listening; returns the endpoint actually bound (a TCP port 0 becomes the real port).</summary>
    public NbdEndpoint Listen(NbdEndpoint endpoint)
    {
        var socket = endpoint.Listen();
        var bound = endpoint;
        if (!endpoint.IsUnix && socket.LocalEndPoint is IPEndPoint ip)
            bound = endpoint with { Port = ip.Port };
        var listener = new Listener(socket, bound);
        listener.EventId = Loop.Register(EventMode.Read, (int)socket.Handle, 0,
            static (_, _, s) => { var (server, l) = ((NbdServer, Listener))s!; server.Accept(l); }, (this, listener));
        _listeners.Add(listener);
        _log.Info("nbd_server_listen", $"exporting {Export.SizeBytes} bytes{(Export.ReadOnly ? " read-only" : "")} on {bound}");
        return bound;
    }

    private void Accept(Listener listener)
    {
        for (int i = 0; i < 16; i++)
        {
            Socket client;
            try { client = listener.Socket.Accept(); }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.WouldBlock or SocketError.TryAgain or SocketError.Interrupted)
            {
                return;
            }
            catch (SocketException e)
            {
                _log.Warn("nbd_server_accept", $"accept on {listener.Endpoint} failed: {e.SocketErrorCode}");
                return;
            }
            if (!listener.Endpoint.IsUnix)
                client.NoDelay = true;
            Accepted++;
            string peer = listener.Endpoint.IsUnix ? $"unix#{Accepted}" : client.RemoteEndPoint?.ToString() ?? "tcp";
            var connection = new NbdConnection(this, client, peer);
            _connections.Add(connection);
            connection.Start();
        }
    }

    internal void OnConnectionClosed(NbdConnection connection)
    {
        _connections.Remove(connection);
        if (connection.CloseReason is { } reason && reason.StartsWith("protocol violation", StringComparison.Ordinal))
            _log.Warn("nbd_connection", $"{connection.Peer}: {reason}");
    }

    internal void WakeWaiting()
    {
        foreach (var c in _connections) c.WakeIfWaiting();
    }

    /// <summary>Stops accepting and closes every connection (their in-flight I/O still completes).</summary>
    public void Stop()
    {
        foreach (var l in _listeners)
        {
            Loop.Unregister(l.EventId);
            l.Socket.Dispose();
            if (l.Endpoint.IsUnix)
            {
                try { File.Delete(l.Endpoint.UnixPath!); } catch (IOException) { }
            }
        }
        _listeners.Clear();
        foreach (var c in _connections.ToArray()) c.Close("server shutting down");
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Stop();
        Buffers.Dispose();
        _zeroes?.Dispose();
    }
}
