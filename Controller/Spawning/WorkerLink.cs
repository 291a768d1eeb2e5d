using BlkTapCtrl.Protocol.Control;

namespace BlkTapCtrl.Controller.Spawning;

/// <summary>
/// One running worker as the supervisor sees it: its pid and FIFO pair, and the cookies of the channels it
/// serves (one, or several in shared mode). Messages read from it are handed to <c>onMessage</c> with the
/// link, so replies are matched by cookie <b>and</b> receiving FIFO (reference §2).
/// </summary>
public sealed class WorkerLink : IDisposable
{
    /// <summary>The supervisor's limit for a message in either direction (reference §1.6).</summary>
    public static readonly TimeSpan MessageTimeout = TimeSpan.FromSeconds(2);

    private readonly ControlFifos _fifos;
    private readonly byte[] _sendBuffer = new byte[ControlMessage.Size];
    private readonly CancellationTokenSource _stop = new();
    private bool _disposed;

    public WorkerLink(ControlFifos fifos, int pid, int minor)
    {
        _fifos = fifos;
        Pid = pid;
        Minor = minor;
    }

    public int Pid { get; }
    /// <summary>The minor whose FIFOs this link uses (the first channel's, in shared mode).</summary>
    public int Minor { get; }
    public string WriteFifo => _fifos.WritePath;
    public string ReadFifo => _fifos.ReadPath;

    /// <summary>Cookies of the channels using this worker.</summary>
    public HashSet<ushort> Cookies { get; } = [];

    /// <summary>Set once the process has exited (or was given up on); sends then fail.</summary>
    public bool Exited { get; set; }

    public bool IsDisposed => _disposed;

    /// <summary>
    /// Reads 280-byte records until the link is disposed. A record begun but not finished within the
    /// 2 s limit is reported as a read failure. Records are delivered in order on the caller's behalf.
    /// </summary>
    public async Task ReadLoopAsync(Action<WorkerLink, ControlMessage> onMessage, Action<WorkerLink, string> onReadFailure)
    {
        var record = new byte[ControlMessage.Size];
        var token = _stop.Token;
        try
        {
            while (!token.IsCancellationRequested)
            {
                int got = await _fifos.Reader.ReadAsync(record.AsMemory(0, ControlMessage.Size), token).ConfigureAwait(false);
                if (got <= 0) { onReadFailure(this, "control FIFO closed"); return; }
                if (got < ControlMessage.Size)
                {
                    using var limit = CancellationTokenSource.CreateLinkedTokenSource(token);
                    limit.CancelAfter(MessageTimeout);
                    try
                    {
                        while (got < ControlMessage.Size)
                        {
                            int n = await _fifos.Reader.ReadAsync(record.AsMemory(got), limit.Token).ConfigureAwait(false);
                            if (n <= 0) { onReadFailure(this, "control FIFO closed mid-message"); return; }
                            got += n;
                        }
                    }
                    catch (OperationCanceledException) when (!token.IsCancellationRequested)
                    {
                        onReadFailure(this, $"reading message: timed out after {got} of {ControlMessage.Size} bytes");
                        return;
                    }
                }
                ControlMessage message;
                try
                {
                    message = ControlMessage.Read(record);
                }
                catch (ControlProtocolException e)
                {
                    onReadFailure(this, "reading message: " + e.Message);
                    continue;
                }
                onMessage(this, message);
            }
        }
        catch (OperationCanceledException) { }
        catch (ObjectDisposedException) { }
        catch (IOException e) when (!_disposed)
        {
            onReadFailure(this, "reading message: " + e.Message);
        }
    }

    /// <summary>
    /// Sends one record within 2 s. A FIFO write of 280 bytes is atomic (below PIPE_BUF), so a timeout
    /// never leaves half a record behind. Throws <see cref="IOException"/> on failure (−EIO in the original).
    /// </summary>
    public async Task SendAsync(ControlMessage message)
    {
        if (_disposed || Exited)
            throw new IOException("tapdisk is gone");
        message.WriteTo(_sendBuffer);
        using var limit = new CancellationTokenSource(MessageTimeout);
        try
        {
            await _fifos.Writer.WriteAsync(_sendBuffer, limit.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            throw new IOException($"timed out after {MessageTimeout.TotalSeconds:0} s (tapdisk is not reading)");
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _stop.Cancel();
        _fifos.Dispose();
        _stop.Dispose();
    }
}
