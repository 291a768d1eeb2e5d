using System.Net.Sockets;
using BlkTapCtrl.Protocol.ControlSocket;
using BlkTapCtrl.Diagnostics.Stats;
using Microsoft.Extensions.Logging;

namespace BlkTapCtrl.Controller.ControlSocket;

/// <summary>
/// Serves the control socket (docs/control-socket.md) for <c>tap-ctl</c>: a unix stream socket created with
/// mode 0600 (only its owner, root on a dom0, may connect), one JSON request line in, one JSON response line
/// out. A stale socket file left by a crashed controller is replaced (the pid-file lock already proved no
/// other controller runs). Queries reach the channels through the supervisor's main loop, each with a deadline
/// so a wedged loop is reported instead of hanging the operator.
/// </summary>
public sealed class ControlSocketServer : IAsyncDisposable
{
    /// <summary>How long a query may wait for the main loop.</summary>
    public static readonly TimeSpan QueryTimeout = TimeSpan.FromSeconds(5);

    private readonly Supervisor _supervisor;
    private readonly ILogger _log;
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private Task _accepting = Task.CompletedTask;

    public ControlSocketServer(string path, Supervisor supervisor, ILogger log)
    {
        Path = path;
        _supervisor = supervisor;
        _log = log;
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            if (File.Exists(path)) File.Delete(path);
            _listener.Bind(new UnixDomainSocketEndPoint(path));
            // Restrict before listen(): until then every connect is refused, so no one slips in at 0777.
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            _listener.Listen(16);
        }
        catch
        {
            _listener.Dispose();
            throw;
        }
    }

    public string Path { get; }

    public void Start() => _accepting = AcceptLoopAsync();

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException) { return; }
            catch (SocketException e)
            {
                _log.LogWarning("control socket {Path}: accept: {Error}", Path, e.Message);
                await Task.Delay(100).ConfigureAwait(false);
                continue;
            }
            _ = ServeAsync(client);
        }
    }

    private async Task ServeAsync(Socket client)
    {
        using var _ = client;
        using var stream = new NetworkStream(client, ownsSocket: false);
        var buffer = new byte[4096];
        var line = new List<byte>();
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                int n = await stream.ReadAsync(buffer, _stop.Token).ConfigureAwait(false);
                if (n == 0) return;
                for (int i = 0; i < n; i++)
                {
                    if (buffer[i] != (byte)'\n')
                    {
                        line.Add(buffer[i]);
                        if (line.Count > ControlSocketProtocol.MaxLineBytes)
                        {
                            await stream.WriteAsync(ControlSocketJson.EncodeError($"request longer than {ControlSocketProtocol.MaxLineBytes} bytes"), _stop.Token).ConfigureAwait(false);
                            return;
                        }
                        continue;
                    }
                    byte[] answer = await AnswerAsync(line.ToArray()).ConfigureAwait(false);
                    line.Clear();
                    await stream.WriteAsync(answer, _stop.Token).ConfigureAwait(false);
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The client went away or we are stopping: nothing to answer.
        }
    }

    /// <summary>One request line to one response line; never throws (bad input gets an error answer).</summary>
    public async Task<byte[]> AnswerAsync(byte[] line)
    {
        ControlRequest request;
        try
        {
            request = ControlSocketJson.DecodeRequest(line);
        }
        catch (ControlSocketProtocolException e)
        {
            return ControlSocketJson.EncodeError($"bad request: {e.Message}");
        }
        try
        {
            switch (request.Op)
            {
                case ControlSocketProtocol.OpInfo:
                    return ControlSocketJson.EncodeInfo(_supervisor.Info());
                case ControlSocketProtocol.OpList:
                    return ControlSocketJson.EncodeList(WithOpenImages(await _supervisor.ListChannelsAsync().WaitAsync(QueryTimeout).ConfigureAwait(false)));
                case ControlSocketProtocol.OpStats:
                    if (request.DomId is not { } domId || request.DevId is not { } devId)
                        return ControlSocketJson.EncodeError("stats: fields 'domid' and 'devid' are required");
                    var channel = await _supervisor.FindChannelAsync(domId, devId).WaitAsync(QueryTimeout).ConfigureAwait(false);
                    if (channel == null)
                        return ControlSocketJson.EncodeError($"stats: no VBD {domId}/{devId}");
                    return Stats(channel);
                default:
                    return ControlSocketJson.EncodeError($"unknown op '{request.Op}' (known: info, list, stats)");
            }
        }
        catch (TimeoutException)
        {
            return ControlSocketJson.EncodeError($"the controller's main loop did not answer within {QueryTimeout.TotalSeconds} s");
        }
    }

    /// <summary>
    /// The chain each worker really has open (leaf and parents), from its stats snapshot: the controller only
    /// knows the leaf it named in <c>params</c>. A worker without a readable snapshot keeps the list as it was.
    /// </summary>
    private IReadOnlyList<ChannelInfo> WithOpenImages(IReadOnlyList<ChannelInfo> channels)
    {
        var snapshots = new Dictionary<int, TapdiskStats?>();
        return channels.Select(c =>
        {
            if (c.Pid == 0) return c;
            if (!snapshots.TryGetValue(c.Pid, out var snapshot))
                snapshots[c.Pid] = snapshot = TryReadSnapshot(c.Pid, out _);
            return snapshot?.Vbds.FirstOrDefault(v => v.Cookie == c.Cookie) is { Images.Count: > 0 } vbd ? c with { Images = vbd.Images } : c;
        }).ToList();
    }

    /// <summary>A worker's stats snapshot (docs/tapdisk-stats.md), or null with the reason.</summary>
    private TapdiskStats? TryReadSnapshot(int pid, out string error)
    {
        string file = System.IO.Path.Combine(WorkerLogDir.Resolve(_supervisor.Info().LogDir), $"TAPDISK.{pid}.stats.json");
        error = "";
        try
        {
            return TapdiskStatsJson.Parse(File.ReadAllBytes(file));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            error = $"reading {file}: {e.Message}";
        }
        catch (Exception e) when (e is FormatException or System.Text.Json.JsonException or InvalidDataException)
        {
            error = $"{file}: {e.Message}";
        }
        return null;
    }

    /// <summary>The VBD's entry of its worker's stats snapshot (docs/tapdisk-stats.md), with the error buckets.</summary>
    private byte[] Stats(ChannelInfo channel)
    {
        if (channel.Pid == 0)
            return ControlSocketJson.EncodeError($"stats: VBD {channel.DomId}/{channel.DevId} has no tapdisk (channel {channel.ChannelState})");
        if (TryReadSnapshot(channel.Pid, out string error) is not { } snapshot)
            return ControlSocketJson.EncodeError($"stats: {error}");
        // A shared tapdisk serves several VBDs: keep only this one's counters.
        var mine = snapshot with { Vbds = snapshot.Vbds.Where(v => v.Cookie == channel.Cookie).ToList() };
        return ControlSocketJson.EncodeStats(channel, TapdiskStatsJson.Serialize(mine));
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Dispose();
        await _accepting.ConfigureAwait(false);
        try { File.Delete(Path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        _stop.Dispose();
    }
}
