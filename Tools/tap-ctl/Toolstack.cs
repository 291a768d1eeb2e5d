using System.Globalization;
using BlkTapCtrl.Protocol.ControlSocket;
using BlkTapCtrl.XenStore.Client;

namespace BlkTapCtrl.Tools.TapCtl;

/// <summary>
/// tap-ctl acting as the toolstack does (xl/xapi): every change to a VBD is a XenStore write under its backend
/// node <c>/local/domain/&lt;dom0&gt;/backend/tap/&lt;domid&gt;/&lt;devid&gt;</c>, and every wait is a watch on the key
/// the controller answers with, bounded by a timeout. The controller is only read (state, dom0, socket paths).
/// </summary>
public sealed class Toolstack : IAsyncDisposable
{
    private readonly XenStoreClient _xs;
    private readonly ControllerConnection _controller;

    private Toolstack(XenStoreClient xs, ControllerConnection controller, int dom0)
    {
        _xs = xs;
        _controller = controller;
        Dom0 = dom0;
    }

    public int Dom0 { get; }

    /// <summary>XenStore at <paramref name="xenstorePath"/> (else $XENSTORED_PATH, else the controller's own).</summary>
    public static async Task<Toolstack> ConnectAsync(ControllerConnection controller, string? xenstorePath, CancellationToken ct)
    {
        var info = await controller.InfoAsync(ct).ConfigureAwait(false);
        if (info.Dom0 < 0)
            throw new TapCtlException(ExitCodes.Failed, "blktapctrl has not found dom0 in XenStore yet (no /local/domain/*/name = Domain-0)");
        string path = xenstorePath is { Length: > 0 } ? xenstorePath
            : Environment.GetEnvironmentVariable("XENSTORED_PATH") is { Length: > 0 } env ? env : info.XenStorePath;
        try
        {
            var xs = await XenStoreClient.ConnectAsync(path, ct).ConfigureAwait(false);
            return new Toolstack(xs, controller, info.Dom0);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or XenStoreException or XenStoreConnectionLostException)
        {
            throw new TapCtlException(ExitCodes.Failed, $"connecting to xenstore at {path}: {e.Message}");
        }
    }

    public string Backend(int domId, int devId) =>
        string.Create(CultureInfo.InvariantCulture, $"/local/domain/{Dom0}/backend/tap/{domId}/{devId}");

    /// <summary>Creates <c>pause</c> and waits for <c>pause-done</c>.</summary>
    public async Task PauseAsync(int domId, int devId, TimeSpan timeout, CancellationToken ct)
    {
        string p = await RequireBackendAsync(domId, devId, ct).ConfigureAwait(false);
        await Xs(() => _xs.WriteAsync(p + "/pause", "", ct)).ConfigureAwait(false);
        if (!await WaitAsync(p + "/pause-done", async () => await _xs.ExistsAsync(p + "/pause-done", ct).ConfigureAwait(false), timeout, ct).ConfigureAwait(false))
            throw new TapCtlException(ExitCodes.Failed,
                $"{p}/pause-done did not appear within {timeout.TotalSeconds} s ({await DescribeAsync(domId, devId, ct).ConfigureAwait(false)}); 'pause' is left in place");
    }

    /// <summary>Optionally rewrites <c>params</c>, removes <c>pause</c>, and waits until the channel runs again.</summary>
    public async Task UnpauseAsync(int domId, int devId, string? newParams, TimeSpan timeout, CancellationToken ct)
    {
        string p = await RequireBackendAsync(domId, devId, ct).ConfigureAwait(false);
        if (newParams != null)
            await Xs(() => _xs.WriteAsync(p + "/params", newParams, ct)).ConfigureAwait(false);
        await Xs(() => _xs.RemoveAsync(p + "/pause", ct)).ConfigureAwait(false);
        if (!await WaitAsync(p + "/pause-done", async () => !await _xs.ExistsAsync(p + "/pause-done", ct).ConfigureAwait(false), timeout, ct).ConfigureAwait(false))
            throw new TapCtlException(ExitCodes.Failed, $"{p}/pause-done was not removed within {timeout.TotalSeconds} s");
        await WaitForChannelAsync(domId, devId, c => c?.ChannelState == "Running", "running", timeout, ct).ConfigureAwait(false);
    }

    /// <summary>Registers a VBD (frontend, params, mode, tapdisk-request = start, in one transaction) and waits for tapdisk-pid.</summary>
    public async Task<ChannelInfo> SpawnAsync(int domId, int devId, string @params, string mode, TimeSpan timeout, CancellationToken ct)
    {
        string p = Backend(domId, devId);
        if (await _xs.ExistsAsync(p, ct).ConfigureAwait(false))
            throw new TapCtlException(ExitCodes.Failed, $"{p} already exists: VBD {domId}/{devId} is registered");
        string frontend = string.Create(CultureInfo.InvariantCulture, $"/local/domain/{domId}/device/vbd/{devId}");
        await Xs(() => _xs.RunInTransactionAsync(async tx =>
        {
            await tx.WriteAsync(p + "/frontend", frontend).ConfigureAwait(false);
            await tx.WriteAsync(p + "/params", @params).ConfigureAwait(false);
            await tx.WriteAsync(p + "/mode", mode).ConfigureAwait(false);
            await tx.WriteAsync(p + "/tapdisk-request", "start").ConfigureAwait(false);
            // The directory node itself last, as the toolstack does: the backend watch fires for <P> and the
            // controller probes a complete directory (watch events for the keys below it are not probes, §1.3).
            await tx.WriteAsync(p, "").ConfigureAwait(false);
        }, ct)).ConfigureAwait(false);
        if (!await WaitAsync(p + "/tapdisk-pid", async () => await _xs.ExistsAsync(p + "/tapdisk-pid", ct).ConfigureAwait(false)
                || await _xs.ExistsAsync(p + "/tapdisk-error", ct).ConfigureAwait(false), timeout, ct).ConfigureAwait(false)
            || await _xs.ExistsAsync(p + "/tapdisk-error", ct).ConfigureAwait(false))
        {
            string why = await _xs.TryReadAsync(p + "/tapdisk-error", ct).ConfigureAwait(false) is { } e ? $"tapdisk-error: {e.TrimEnd('\0')}" : $"no tapdisk-pid within {timeout.TotalSeconds} s";
            throw new TapCtlException(ExitCodes.Failed, $"VBD {domId}/{devId} did not start ({why}); {p} is left for inspection (tap-ctl close removes it)");
        }
        return await WaitForChannelAsync(domId, devId, c => c?.ChannelState == "Running", "running", timeout, ct).ConfigureAwait(false)
            ?? throw new TapCtlException(ExitCodes.Failed, $"VBD {domId}/{devId} vanished");
    }

    /// <summary>
    /// Writes tapdisk-request = shutdown-normal (or -force), waits for the channel to close, then (unless
    /// <paramref name="keepBackend"/>) removes the backend node and waits until the controller dropped the VBD.
    /// </summary>
    public async Task CloseAsync(int domId, int devId, bool force, bool keepBackend, TimeSpan timeout, CancellationToken ct)
    {
        string p = Backend(domId, devId);
        if (await _xs.ExistsAsync(p, ct).ConfigureAwait(false))
        {
            await Xs(() => _xs.WriteAsync(p + "/tapdisk-request", force ? "shutdown-force" : "shutdown-normal", ct)).ConfigureAwait(false);
            await WaitForChannelAsync(domId, devId, c => c == null || c.ChannelState is "Closed" or "Dead", "closed", timeout, ct).ConfigureAwait(false);
            if (keepBackend) return;
            await Xs(() => _xs.RemoveAsync(p, ct)).ConfigureAwait(false);
        }
        else if (keepBackend)
            throw new TapCtlException(ExitCodes.Failed, $"no VBD {domId}/{devId} ({p} does not exist)");
        await WaitForChannelAsync(domId, devId, c => c == null, "removed", timeout, ct).ConfigureAwait(false);
    }

    private async Task<string> RequireBackendAsync(int domId, int devId, CancellationToken ct)
    {
        string p = Backend(domId, devId);
        if (!await _xs.ExistsAsync(p, ct).ConfigureAwait(false))
            throw new TapCtlException(ExitCodes.Failed, $"no VBD {domId}/{devId} ({p} does not exist)");
        return p;
    }

    private async Task<string> DescribeAsync(int domId, int devId, CancellationToken ct)
    {
        var list = await _controller.ListAsync(ct).ConfigureAwait(false);
        return list.FirstOrDefault(c => c.DomId == domId && c.DevId == devId) is { } c
            ? $"channel {c.ChannelState}, vbd {c.VbdState}, shutdown {c.ShutdownState}"
            : "the controller has no channel for it";
    }

    /// <summary>Polls the controller's list (every 20 ms) until <paramref name="done"/> holds for the VBD.</summary>
    private async Task<ChannelInfo?> WaitForChannelAsync(int domId, int devId, Func<ChannelInfo?, bool> done, string what, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var c = (await _controller.ListAsync(ct).ConfigureAwait(false)).FirstOrDefault(x => x.DomId == domId && x.DevId == devId);
            if (done(c)) return c;
            if (c != null && c.VbdState is "Broken" && what == "running")
                throw new TapCtlException(ExitCodes.Failed, $"VBD {domId}/{devId} is broken (channel {c.ChannelState}); see {c.Backend}/tapdisk-error");
            if (DateTime.UtcNow > deadline)
                throw new TapCtlException(ExitCodes.Failed, c == null ? $"VBD {domId}/{devId}: the controller has no channel for it"
                    : $"VBD {domId}/{devId} not {what} within {timeout.TotalSeconds} s (channel {c.ChannelState}, vbd {c.VbdState}, shutdown {c.ShutdownState})");
            await Task.Delay(20, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Watches <paramref name="key"/> (a new watch fires once at once) until <paramref name="condition"/> holds.</summary>
    private async Task<bool> WaitAsync(string key, Func<Task<bool>> condition, TimeSpan timeout, CancellationToken ct)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
        limit.CancelAfter(timeout);
        await using var watch = await Xs(() => _xs.WatchAsync(key, "tap-ctl", ct)).ConfigureAwait(false);
        try
        {
            await foreach (var _ in watch.ReadAllAsync(limit.Token).ConfigureAwait(false))
                if (await condition().ConfigureAwait(false))
                    return true;
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested) { }
        return await condition().ConfigureAwait(false);
    }

    private static async Task<T> Xs<T>(Func<Task<T>> op)
    {
        try { return await op().ConfigureAwait(false); }
        catch (XenStoreException e) { throw new TapCtlException(ExitCodes.Failed, $"xenstore: {e.Message}"); }
    }

    private static async Task Xs(Func<Task> op)
    {
        try { await op().ConfigureAwait(false); }
        catch (XenStoreException e) { throw new TapCtlException(ExitCodes.Failed, $"xenstore: {e.Message}"); }
    }

    public async ValueTask DisposeAsync() => await _xs.DisposeAsync().ConfigureAwait(false);
}
