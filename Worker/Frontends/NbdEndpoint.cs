using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace BlkTapCtrl.Worker.Frontends;

/// <summary>Where an NBD server listens: <c>unix:PATH</c> or <c>tcp:HOST:PORT</c> (port 0 picks a free one).</summary>
public sealed record NbdEndpoint(string? UnixPath, string? Host, int Port)
{
    public bool IsUnix => UnixPath != null;

    public static NbdEndpoint Parse(string text)
    {
        if (text.StartsWith("unix:", StringComparison.Ordinal))
        {
            string path = text[5..];
            if (path.Length == 0)
                throw new FormatException($"'{text}': unix socket path is empty");
            if (System.Text.Encoding.UTF8.GetByteCount(path) > 107)
                throw new FormatException($"'{text}': unix socket path is longer than 107 bytes");
            return new NbdEndpoint(path, null, 0);
        }
        if (text.StartsWith("tcp:", StringComparison.Ordinal))
        {
            string rest = text[4..];
            int colon = rest.LastIndexOf(':');
            if (colon < 0)
                throw new FormatException($"'{text}': expected tcp:HOST:PORT");
            string host = rest[..colon].Trim('[', ']');
            if (!int.TryParse(rest[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port > 65535)
                throw new FormatException($"'{text}': port '{rest[(colon + 1)..]}' is not a number from 0 to 65535");
            return new NbdEndpoint(null, host.Length == 0 ? "127.0.0.1" : host, port);
        }
        throw new FormatException($"'{text}': expected unix:PATH or tcp:HOST:PORT");
    }

    /// <summary>Creates the listening socket (non-blocking). A stale unix socket file is replaced.</summary>
    internal Socket Listen()
    {
        Socket socket;
        if (IsUnix)
        {
            if (File.Exists(UnixPath))
                File.Delete(UnixPath);
            socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            socket.Bind(new UnixDomainSocketEndPoint(UnixPath!));
        }
        else
        {
            var address = Host is "localhost" ? IPAddress.Loopback : IPAddress.Parse(Host!);
            socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            socket.Bind(new IPEndPoint(address, Port));
        }
        socket.Listen(64);
        socket.Blocking = false;
        return socket;
    }

    public override string ToString() => IsUnix ? $"unix:{UnixPath}" : $"tcp:{Host}:{Port}";
}
