using System.Net.Sockets;
using BlkTapCtrl.Protocol.XenStore;

namespace BlkTapCtrl.XenStore.Server;

/// <summary>
/// One client on the unix socket (dom0, like every socket client of Xen's daemon). A reader reassembles
/// frames and hands each to the engine; a writer sends whatever the engine queued. A client sending an
/// oversized frame, or not reading what it is sent, is disconnected with the reason logged; the others
/// never notice.
/// </summary>
internal sealed class SocketSession : ClientSession
{
    private readonly Socket _socket;
    private readonly StoreEngine _engine;
    private readonly StoreQuotas _quotas;
    private readonly Action<string> _log;
    private readonly OutboundQueue _output;
    private readonly CancellationTokenSource _stop = new();

    public SocketSession(Socket socket, StoreEngine engine, StoreQuotas quotas, Action<string> log) : base(0)
    {
        _socket = socket;
        _engine = engine;
        _quotas = quotas;
        _log = log;
        _output = new OutboundQueue(quotas.OutputBytesPerConnection);
    }

    public async Task RunAsync(CancellationToken serverStopping)
    {
        using var link = serverStopping.Register(() => _stop.Cancel());
        var writer = Task.Run(WriteLoopAsync);
        try
        {
            await ReadLoopAsync().ConfigureAwait(false);
        }
        finally
        {
            _engine.Disconnect(this);
            // A client that half-closed still gets the replies to what it sent; one that does not read gets a
            // short grace period before the writer is cancelled.
            _output.Close();
            try { await writer.WaitAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false); } catch (Exception) { }
            _stop.Cancel();
            try { await writer.ConfigureAwait(false); } catch (Exception) { }
            _socket.Dispose();
            _output.Dispose();
            _stop.Dispose();
        }
    }

    private async Task ReadLoopAsync()
    {
        using var frames = new XsFrameReader();
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                int n = await _socket.ReceiveAsync(frames.GetFillBuffer(), SocketFlags.None, _stop.Token).ConfigureAwait(false);
                if (n == 0) return;
                frames.Advance(n);
                while (frames.TryRead(out var header, out var payload))
                {
                    _engine.Handle(this, header, payload.Span);
                    if (_output.PendingFrames >= _quotas.OutstandingRequestsPerConnection)
                    {
                        await FlushAsync().ConfigureAwait(false);
                        // Back-pressure: this client reads its replies before we take more of its requests.
                        await _output.WaitBelowAsync(_quotas.OutstandingRequestsPerConnection / 2, _stop.Token).ConfigureAwait(false);
                    }
                }
                // Send this batch's replies from here (usually completing at once) rather than waking the writer.
                await FlushAsync().ConfigureAwait(false);
            }
        }
        catch (XsProtocolException e)
        {
            RequestDisconnect(e.Message);
        }
        catch (OperationCanceledException) { }
        catch (SocketException) { }
        catch (ObjectDisposedException) { }
        catch (Exception e)
        {
            // A bug must cost only this client, and must be visible in the log.
            _log($"internal error serving client {Id}: {e}");
            RequestDisconnect("internal error");
        }
    }

    private async ValueTask FlushAsync()
    {
        if (!_output.TryTake(out var chunk)) return;
        try
        {
            int sent = 0;
            while (sent < chunk.Count)
                sent += await _socket.SendAsync(chunk.AsMemory(sent), SocketFlags.None, _stop.Token).ConfigureAwait(false);
        }
        finally
        {
            _output.Release(chunk);
        }
    }

    private async Task WriteLoopAsync()
    {
        try
        {
            while (true)
            {
                var chunk = await _output.TakeAsync(_stop.Token).ConfigureAwait(false);
                if (chunk.Count == 0) return;
                int sent = 0;
                while (sent < chunk.Count)
                    sent += await _socket.SendAsync(chunk.AsMemory(sent), SocketFlags.None, _stop.Token).ConfigureAwait(false);
                _output.Release(chunk);
            }
        }
        catch (OperationCanceledException) { }
        catch (SocketException) { _stop.Cancel(); }
        catch (ObjectDisposedException) { }
    }

    protected internal override bool Send(XsHeader header, ReadOnlySpan<byte> payload) => _output.TryEnqueue(header, payload);

    protected override void OnDisconnectRequested(string reason)
    {
        _log($"disconnecting client {Id}: {reason}");
        _output.Close();
        // Called with the engine's lock held: tear down on a pool thread so no continuation runs under it.
        ThreadPool.UnsafeQueueUserWorkItem(_ =>
        {
            try { _stop.Cancel(); } catch (ObjectDisposedException) { }
            try { _socket.Shutdown(SocketShutdown.Both); } catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
        }, null);
    }
}
