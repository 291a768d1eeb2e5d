using System.Net.Sockets;

namespace BlkTapCtrl.XenStore.Server;

/// <summary>
/// xenstored on a unix socket: accepts clients, runs one <see cref="SocketSession"/> each against a shared
/// <see cref="StoreEngine"/>, and keeps the optional state file current.
/// </summary>
public sealed class XenStoreServer : IAsyncDisposable
{
    private readonly XenStoreServerOptions _options;
    private readonly Action<string> _log;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _sessions = [];
    private Socket? _listener;
    private Task? _acceptLoop;
    private Task? _saveLoop;
    private long _savedChangeCount = -1;

    public XenStoreServer(XenStoreServerOptions options, Action<string>? log = null)
    {
        _options = options;
        _log = log ?? (_ => { });
        Node? root = null;
        if (options.StateFile != null && File.Exists(options.StateFile))
        {
            root = StateFile.Load(options.StateFile);
            _log($"loaded state from {options.StateFile}");
        }
        Engine = new StoreEngine(root, options.Quotas, _log);
    }

    public StoreEngine Engine { get; }

    public string SocketPath => _options.SocketPath;

    /// <summary>Binds the socket and starts accepting; returns once clients can connect.</summary>
    public void Start()
    {
        var dir = Path.GetDirectoryName(_options.SocketPath);
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        RemoveStaleSocket(_options.SocketPath);
        // Bound and listening under a temporary name, then renamed into place: whoever sees the socket file
        // can connect at once (a client racing between bind() and listen() would be refused).
        string staging = Path.Combine(string.IsNullOrEmpty(dir) ? "." : dir, $".xenstored.{Environment.ProcessId}.sock");
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            File.Delete(staging);
            listener.Bind(new UnixDomainSocketEndPoint(staging));
            listener.Listen(512);
            File.Move(staging, _options.SocketPath, overwrite: true);
        }
        catch
        {
            listener.Dispose();
            try { File.Delete(staging); } catch (IOException) { }
            throw;
        }
        _listener = listener;
        _acceptLoop = Task.Run(AcceptLoopAsync);
        if (_options.StateFile != null)
        {
            SaveState();
            _saveLoop = Task.Run(SaveLoopAsync);
        }
        _log($"listening on {_options.SocketPath}");
    }

    private static void RemoveStaleSocket(string path)
    {
        if (!File.Exists(path)) return;
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(path));
        }
        catch (SocketException)
        {
            File.Delete(path);
            return;
        }
        throw new InvalidOperationException($"another xenstored is already listening on {path}");
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener!.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) { return; }
            catch (ObjectDisposedException) { return; }
            catch (SocketException e)
            {
                _log($"accept failed: {e.Message}");
                await Task.Delay(10).ConfigureAwait(false);
                continue;
            }
            var session = new SocketSession(client, Engine, _options.Quotas, _log);
            var run = Task.Run(() => session.RunAsync(_stop.Token));
            lock (_sessions)
            {
                _sessions.RemoveAll(t => t.IsCompleted);
                _sessions.Add(run);
            }
        }
    }

    private async Task SaveLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(_options.StateSaveDelay, _stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) { return; }
            SaveState();
        }
    }

    private void SaveState()
    {
        long changes = Engine.ChangeCount;
        if (changes == _savedChangeCount || _options.StateFile == null) return;
        try
        {
            StateFile.Save(Engine.Root, _options.StateFile);
            _savedChangeCount = changes;
        }
        catch (IOException e)
        {
            _log($"saving state to {_options.StateFile} failed: {e.Message}");
        }
    }

    /// <summary>Stops accepting, drops every client, saves the state and removes the socket file.</summary>
    public async Task StopAsync()
    {
        if (_stop.IsCancellationRequested) return;
        _stop.Cancel();
        _listener?.Dispose();
        if (_acceptLoop != null) await _acceptLoop.ConfigureAwait(false);
        Task[] sessions;
        lock (_sessions) sessions = [.. _sessions];
        try { await Task.WhenAll(sessions).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false); }
        catch (Exception e) { _log($"clients did not close cleanly: {e.Message}"); }
        if (_saveLoop != null) await _saveLoop.ConfigureAwait(false);
        SaveState();
        try { File.Delete(_options.SocketPath); } catch (IOException) { }
        _log("stopped");
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        _stop.Dispose();
    }
}
