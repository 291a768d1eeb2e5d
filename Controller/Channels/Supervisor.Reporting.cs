using BlkTapCtrl.Controller.Channels;
using BlkTapCtrl.StateMachines.Channel;
using BlkTapCtrl.StateMachines.Vbd;
using BlkTapCtrl.XenStore.Client;
using Microsoft.Extensions.Logging;

namespace BlkTapCtrl.Controller;

// Fatal errors (§1.9: enter broken + error report) and the cookie-guarded transactional writes (§1.10).
public sealed partial class Supervisor
{
    /// <summary>Fatal = enter(broken) + log + transactional tapdisk-error. The channel state is left alone.</summary>
    private async Task ReportFatalAsync(TapChannel channel, string text)
    {
        _log.LogError("{Channel}: {Error}", channel, text);
        channel.Vbd.Fire(VbdTrigger.Fatal); // ignored when already fenced
        await WriteGuardedAsync(channel, channel.Keys.TapdiskError, text).ConfigureAwait(false);
    }

    /// <summary>
    /// A fatal error in the conversation (ERROR reply, unexpected message, failed send, expired deadline): the
    /// original left the channel in its wait state for ever (§6 item 6). Here it is also closed — FIFOs
    /// closed, the worker stopped and reaped — and driven, so a dead VBD is still destroyed.
    /// </summary>
    private async Task FaultAsync(TapChannel channel, string text)
    {
        if (channel.Destroyed) return;
        await ReportFatalAsync(channel, text).ConfigureAwait(false);
        if (channel.Channel.State.IsIpcOpen())
        {
            channel.Channel.Fire(ChannelTrigger.Fault);
            ArmDeadline(channel);
            DetachWorker(channel, stopIfLast: true);
        }
        await DriveAsync(channel).ConfigureAwait(false);
    }

    private Task WriteGuardedAsync(TapChannel channel, string key, string value) =>
        WriteGuardedAsync(channel, [(key, System.Text.Encoding.UTF8.GetBytes(value))]);

    /// <summary>
    /// In one transaction: require tapdisk-uuid == cookie (else abort, nothing written), write, commit;
    /// retried on EAGAIN. A stale channel thus never writes into a recreated VBD directory.
    /// The uuid read and the writes leave together (one round trip instead of one per key: this is on the
    /// pause → pause-done path); the transaction's end decides — an abort discards the writes unseen.
    /// </summary>
    private async Task<bool> WriteGuardedAsync(TapChannel channel, IReadOnlyList<(string Key, byte[] Value)> values)
    {
        try
        {
            var (committed, _) = await Xs.RunInTransactionAsync(async tx =>
            {
                var uuidTask = tx.TryReadAsync(channel.Keys.TapdiskUuid);
                var writes = new Task[values.Count];
                for (int i = 0; i < values.Count; i++)
                    writes[i] = tx.WriteAsync(values[i].Key, values[i].Value);
                var uuid = await uuidTask.ConfigureAwait(false);
                if (uuid?.TrimEnd('\0') != channel.CookieText)
                {
                    // Not ours: whatever the writes answered is discarded with the transaction.
                    try { await Task.WhenAll(writes).ConfigureAwait(false); }
                    catch (XenStoreException) { }
                    await tx.AbortAsync().ConfigureAwait(false);
                    return false;
                }
                await Task.WhenAll(writes).ConfigureAwait(false);
                return true;
            }).ConfigureAwait(false);
            if (!committed)
                _log.LogDebug("{Channel}: {Key} not written: backend no longer ours", channel, values[0].Key);
            return committed;
        }
        catch (XenStoreException e)
        {
            _log.LogError("{Channel}: writing {Key}: {Error}", channel, values[0].Key, e.Message);
            return false;
        }
    }
}
