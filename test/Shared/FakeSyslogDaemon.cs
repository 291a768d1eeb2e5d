using System.Net.Sockets;
using System.Text;

namespace BlkTapCtrl.Testing;

/// <summary>
/// A stand-in for /dev/log (this machine has no syslog daemon): a unix datagram socket the test binds and reads
/// only when it chooses, so a test can let the daemon's queue fill up and then drain it.
/// </summary>
public sealed class FakeSyslogDaemon : IDisposable
{
    private readonly Socket _socket;
    private readonly byte[] _buffer = new byte[65536];

    public FakeSyslogDaemon(string path)
    {
        Path = path;
        _socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        _socket.Bind(new UnixDomainSocketEndPoint(path));
    }

    public string Path { get; }

    /// <summary>The next datagram as text, or null when none arrives within <paramref name="timeout"/>.</summary>
    public string? Receive(TimeSpan timeout)
    {
        if (!_socket.Poll(timeout, SelectMode.SelectRead))
            return null;
        int n = _socket.Receive(_buffer);
        return Encoding.UTF8.GetString(_buffer, 0, n);
    }

    /// <summary>Every datagram queued now (waits <paramref name="quiet"/> for stragglers).</summary>
    public List<string> ReceiveAll(TimeSpan quiet)
    {
        var all = new List<string>();
        while (Receive(quiet) is { } s)
            all.Add(s);
        return all;
    }

    /// <summary>The text after the <c>IDENT[pid]: </c> header of an RFC 3164 packet.</summary>
    public static string Text(string packet)
    {
        int i = packet.IndexOf("]: ", StringComparison.Ordinal);
        return i < 0 ? packet : packet[(i + 3)..];
    }

    public void Dispose()
    {
        _socket.Dispose();
        try { File.Delete(Path); }
        catch (IOException) { }
    }
}
