using System.Net.Sockets;
using BlkTapCtrl.Protocol.XenStore;

namespace BlkTapCtrl.XenStore.Server;

/// <summary>
/// One client on the unix socket (dom0, like every socket client of Xen's daemon). A reader reassembles
/// frames and hands each to the engine. What the engine queues is sent by the handling path with
/// non-blocking sends (the reader after each batch of its client's requests; another client's reader right
/// after a request that gave this client watch events); a writer task takes over only what the socket
/// cannot take yet. A client sending an oversized frame, or not reading what it is sent, is disconnected
/// with the reason logged; the others never notice.
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
        // Synchronous sends return at once when the socket buffer is full (async receive and send work as
        // before): no thread that handles a request ever waits for a client to read.
        _socket.Blocking = false;
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
                        SendQueuedNow();
                        // Back-pressure: this client reads its replies before we take more of its requests.
                        await _output.WaitBelowAsync(_quotas.OutstandingRequestsPerConnection / 2, _stop.Token).ConfigureAwait(false);
                    }
                }
                // This batch's replies (and events for this client) leave together in one write.
                SendQueuedNow();
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

    /// <summary>
    /// Sends everything queued with non-blocking writes; what the socket cannot take now goes to the writer
    /// task. Does nothing while another send is in progress: that one's <see cref="OutboundQueue.Release"/>
    /// wakes the writer for what was queued meanwhile.
    /// </summary>
    protected internal override void SendQueuedNow()
    {
        if (!_output.TryTake(out var chunk)) return;
        int sent = 0;
        try
        {
            while (sent < chunk.Count)
            {
                int n = _socket.Send(chunk.AsSpan(sent), SocketFlags.None, out var error);
                // Would block, or failed: the writer waits for room, or meets the same failure and stops.
                if (error != SocketError.Success || n <= 0) break;
                sent += n;
            }
        }
        catch (ObjectDisposedException) { }
        if (sent == chunk.Count) _output.Release(chunk);
        else _output.HandOff(chunk.Slice(sent));
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
