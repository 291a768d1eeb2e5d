using BlkTapCtrl.Diagnostics.Native;

namespace BlkTapCtrl.Diagnostics.Syslog;

/// <summary>
/// Drives a <see cref="SyslogClient"/> for owners without an fd-based event loop (the controller's hosted
/// service, xenstored): <see cref="PumpOnce"/> from the owner's own loop, or <see cref="RunAsync"/> on a
/// long-running task that sleeps while nothing is queued. Logging callers are never blocked either way.
/// </summary>
public sealed class SyslogWritablePump : IDisposable
{
    private readonly SyslogClient _client;
    private readonly SemaphoreSlim _queued = new(0, 1);

    public SyslogWritablePump(SyslogClient client)
    {
        _client = client;
        _client.WantsWritableChanged += OnWantsWritableChanged;
    }

    /// <summary>
    /// If packets are queued, waits up to <paramref name="timeoutMs"/> for the socket to become writable and
    /// sends what the daemon takes. Returns true while packets are still queued.
    /// </summary>
    public unsafe bool PumpOnce(int timeoutMs)
    {
        if (!_client.WantsWritable)
            return false;
        var pfd = new LibC.PollFd { Fd = _client.FileDescriptor, Events = LibC.POLLOUT };
        if (pfd.Fd >= 0 && LibC.Poll(&pfd, 1, timeoutMs) > 0 && (pfd.REvents & LibC.POLLOUT) != 0)
            _client.OnWritable();
        return _client.WantsWritable;
    }

    /// <summary>Pumps until cancelled; idle (no syscalls) while the ring is empty.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            if (!_client.WantsWritable)
            {
                try { await _queued.WaitAsync(cancellationToken).ConfigureAwait(false); }
                catch (OperationCanceledException) { return; }
            }
            // poll with a short timeout so cancellation is noticed promptly.
            while (!cancellationToken.IsCancellationRequested && PumpOnce(100)) { }
        }
    }

    private void OnWantsWritableChanged(bool wants)
    {
        if (wants && _queued.CurrentCount == 0)
        {
            try { _queued.Release(); }
            catch (SemaphoreFullException) { }
        }
    }

    public void Dispose()
    {
        _client.WantsWritableChanged -= OnWantsWritableChanged;
        _queued.Dispose();
    }
}
