using System.Net.Sockets;
using System.Text.Json;
using BlkTapCtrl.Protocol.ControlSocket;

namespace BlkTapCtrl.Tools.TapCtl;

/// <summary>
/// One connection to <c>blktapctrl</c>'s control socket (docs/control-socket.md): request line out, response
/// line in. Failing to connect names the socket and says the controller is not running (exit code 3).
/// </summary>
public sealed class ControllerConnection : IDisposable
{
    public const string SocketVariable = "BLKTAPCTRL_SOCKET";
    public static readonly string DefaultSocketPath = ControlSocketProtocol.DefaultSocketPath("/var/run/blktap");
    private static readonly TimeSpan ReplyTimeout = TimeSpan.FromSeconds(10);

    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly byte[] _buffer = new byte[65536];
    private readonly List<byte> _pending = [];

    private ControllerConnection(string path, Socket socket)
    {
        Path = path;
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
    }

    public string Path { get; }

    /// <summary><c>--socket</c>, else <c>$BLKTAPCTRL_SOCKET</c>, else <c>/var/run/blktap/blktapctrl.sock</c>.</summary>
    public static string ResolvePath(string? option) =>
        option is { Length: > 0 } ? option
        : Environment.GetEnvironmentVariable(SocketVariable) is { Length: > 0 } env ? env
        : DefaultSocketPath;

    public static async Task<ControllerConnection> ConnectAsync(string path, CancellationToken ct)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), ct).ConfigureAwait(false);
            return new ControllerConnection(path, socket);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            string why = e.SocketErrorCode switch
            {
                SocketError.AddressNotAvailable or SocketError.AddressFamilyNotSupported when !File.Exists(path) => "no such socket",
                _ when !File.Exists(path) => "no such socket",
                SocketError.ConnectionRefused => "connection refused",
                SocketError.AccessDenied => "permission denied (the socket is root-only)",
                _ => e.Message,
            };
            throw new TapCtlException(ExitCodes.ControllerUnreachable,
                $"cannot reach blktapctrl at {path}: {why}; is blktapctrl running? (--socket or ${SocketVariable} names another socket)");
        }
        catch (UnauthorizedAccessException)
        {
            socket.Dispose();
            throw new TapCtlException(ExitCodes.ControllerUnreachable, $"cannot reach blktapctrl at {path}: permission denied (the socket is root-only)");
        }
    }

    /// <summary>Sends <paramref name="request"/> and returns the parsed <c>ok</c> answer (caller disposes it).</summary>
    public async Task<JsonDocument> RequestAsync(ControlRequest request, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(ReplyTimeout);
        try
        {
            await _stream.WriteAsync(ControlSocketJson.EncodeRequest(request), timeout.Token).ConfigureAwait(false);
            while (true)
            {
                int newline = _pending.IndexOf((byte)'\n');
                if (newline >= 0)
                {
                    byte[] line = _pending.GetRange(0, newline).ToArray();
                    _pending.RemoveRange(0, newline + 1);
                    return ControlSocketJson.DecodeResponse(line);
                }
                int n = await _stream.ReadAsync(_buffer, timeout.Token).ConfigureAwait(false);
                if (n == 0)
                    throw new TapCtlException(ExitCodes.ControllerUnreachable, $"blktapctrl closed the control socket {Path} without answering '{request.Op}'");
                _pending.AddRange(_buffer.AsSpan(0, n));
                if (_pending.Count > ControlSocketProtocol.MaxLineBytes)
                    throw new TapCtlException(ExitCodes.Failed, $"answer from {Path} longer than {ControlSocketProtocol.MaxLineBytes} bytes");
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new TapCtlException(ExitCodes.Failed, $"blktapctrl at {Path} did not answer '{request.Op}' within {ReplyTimeout.TotalSeconds} s");
        }
        catch (IOException e)
        {
            throw new TapCtlException(ExitCodes.ControllerUnreachable, $"control socket {Path}: {e.Message}");
        }
        catch (ControlSocketErrorException e)
        {
            throw new TapCtlException(ExitCodes.Failed, e.Message);
        }
        catch (ControlSocketProtocolException e)
        {
            throw new TapCtlException(ExitCodes.Failed, $"bad answer from {Path}: {e.Message}");
        }
    }

    public async Task<ControllerInfo> InfoAsync(CancellationToken ct)
    {
        using var doc = await RequestAsync(new ControlRequest(ControlSocketProtocol.OpInfo), ct).ConfigureAwait(false);
        return Decode(() => ControlSocketJson.ReadInfo(doc.RootElement));
    }

    public async Task<IReadOnlyList<ChannelInfo>> ListAsync(CancellationToken ct)
    {
        using var doc = await RequestAsync(new ControlRequest(ControlSocketProtocol.OpList), ct).ConfigureAwait(false);
        return Decode(() => ControlSocketJson.ReadList(doc.RootElement));
    }

    private T Decode<T>(Func<T> read)
    {
        try { return read(); }
        catch (ControlSocketProtocolException e) { throw new TapCtlException(ExitCodes.Failed, $"bad answer from {Path}: {e.Message}"); }
    }

    public void Dispose() => _stream.Dispose();
}
