using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using BlkTapCtrl.Controller.Channels;
using BlkTapCtrl.Controller.Native;
using BlkTapCtrl.Controller.Spawning;
using BlkTapCtrl.Protocol.Control;
using BlkTapCtrl.StateMachines.Channel;
using BlkTapCtrl.XenStore.Client;
using Microsoft.Extensions.Logging;

namespace BlkTapCtrl.Controller;

// Worker messages (§1.9 message table) and completing the connection after OPEN_RSP (§1.5).
public sealed partial class Supervisor
{
    private static ChannelTrigger? TriggerFor(ControlMessageType type) => type switch
    {
        ControlMessageType.PidResponse => ChannelTrigger.PidResponse,
        ControlMessageType.OpenResponse => ChannelTrigger.OpenResponse,
        ControlMessageType.PauseResponse => ChannelTrigger.PauseResponse,
        ControlMessageType.ResumeResponse => ChannelTrigger.ResumeResponse,
        ControlMessageType.CloseResponse => ChannelTrigger.CloseResponse,
        _ => null,
    };

    private static string MessageName(ChannelTrigger trigger) => trigger switch
    {
        ChannelTrigger.PidResponse => "pid response",
        ChannelTrigger.OpenResponse => "open response",
        ChannelTrigger.PauseResponse => "pause response",
        ChannelTrigger.ResumeResponse => "resume response",
        ChannelTrigger.CloseResponse => "close response",
        _ => trigger.ToString(),
    };

    /// <summary>The channel machine refused a trigger: a fatal error, handled by the loop after this event.</summary>
    private void OnChannelUnhandled(TapChannel channel, ChannelState state, ChannelTrigger trigger)
    {
        string text = trigger.ToString().EndsWith("Response", StringComparison.Ordinal)
            ? $"received unexpected message {MessageName(trigger)} in state {(int)state}"
            : $"unexpected {trigger} in state {(int)state}";
        Post(new ChannelFatal(channel, text));
    }

    private async Task OnMessageAsync(WorkerLink link, ControlMessage message)
    {
        // Matched by cookie and by the FIFO it arrived on.
        var channel = _channels.FirstOrDefault(c => c.Link == link && c.Cookie == message.Cookie);
        if (channel == null)
        {
            _log.LogWarning("message {Type} for cookie {Cookie} from tapdisk pid {Pid} matches no channel",
                ControlMessageTypeNames.LogName(message.Type), message.Cookie, link.Pid);
            return;
        }

        if (message.Type == ControlMessageType.RuntimeError)
        {
            await WriteGuardedAsync(channel, channel.Keys.TapdiskError, "runtime error: " + message.Text).ConfigureAwait(false);
            _log.LogError("{Channel}: runtime error: {Text}", channel, message.Text);
            await DriveAsync(channel).ConfigureAwait(false);
            return;
        }

        if (TriggerFor(message.Type) is not { } trigger)
        {
            // ERROR or a request type: never valid from tapdisk. The channel is closed (§6 item 6).
            await FaultAsync(channel, $"received unexpected message {ControlMessageTypeNames.LogName(message.Type)} in state {(int)channel.Channel.State}").ConfigureAwait(false);
            return;
        }
        if (!channel.Channel.Fire(trigger))
            return; // the unhandled callback queued the fatal error; no drive
        ArmDeadline(channel);
        _log.LogDebug("{Channel}: received {Message}", channel, ControlMessageTypeNames.LogName(message.Type));

        switch (message.Type)
        {
            case ControlMessageType.PidResponse:
                channel.ReportedPid = message.Pid;
                if (!SetPriority(channel, message.Pid))
                {
                    await FaultAsync(channel, "setting tapdisk priority: -1").ConfigureAwait(false);
                    return;
                }
                break;
            case ControlMessageType.OpenResponse:
                if (!await CompleteConnectionAsync(channel, message).ConfigureAwait(false))
                    return;
                break;
            case ControlMessageType.CloseResponse:
                // The worker has closed its images; it exits by itself. Close our FIFOs now.
                DetachWorker(channel, stopIfLast: false);
                break;
        }
        await DriveAsync(channel).ConfigureAwait(false);
    }

    /// <summary>
    /// setpriority(pid, −9999), clamped by the kernel to −20. Without the privilege (not root) this is logged
    /// and tolerated — the original's fatal error would break every VBD of an unprivileged test run.
    /// </summary>
    private bool SetPriority(TapChannel channel, int pid)
    {
        if (Libc.setpriority(Libc.PRIO_PROCESS, (uint)pid, -20) == 0) return true;
        int errno = Marshal.GetLastPInvokeError();
        if (errno is Libc.EPERM or Libc.EACCES)
        {
            _log.LogWarning("{Channel}: setting tapdisk priority: {Error} (continuing)", channel, Libc.ErrorText(errno));
            return true;
        }
        return false;
    }

    /// <summary>After OPEN_RSP: tapdisk-pid, sectors, sector-size, info (each with a trailing NUL), backdev, NBD socket.</summary>
    private async Task<bool> CompleteConnectionAsync(TapChannel channel, ControlMessage image)
    {
        static byte[] Nul(string s) => Encoding.ASCII.GetBytes(s + "\0");
        var inv = CultureInfo.InvariantCulture;
        var values = new List<(string Key, byte[] Value)>
        {
            (channel.Keys.TapdiskPid, Nul(channel.ReportedPid.ToString(inv))),
            (channel.Keys.Sectors, Nul(image.Sectors.ToString(inv))),
            (channel.Keys.SectorSize, Nul(image.SectorSize.ToString(inv))),
            (channel.Keys.Info, Nul(image.Info.ToString(inv))),
        };
        try
        {
            if (channel.Device != null && _devices.CompleteConnection(channel.Device) is { } backdev)
                values.Add((channel.Keys.BackdevPath, Encoding.UTF8.GetBytes(backdev)));
            // NBD frontend: a worker that exports the VBD over NBD listens on the device's socket (named by the
            // minor sent in OPEN) by the time it answers OPEN; publish it so clients can find it.
            if (channel.Device is { } device && File.Exists(device.NbdSocket))
                values.Add((channel.Keys.NbdSocket, Encoding.UTF8.GetBytes(device.NbdSocket)));
            await WriteGuardedAsync(channel, values).ConfigureAwait(false);
            _log.LogInformation("{Channel}: running, tapdisk pid {Pid}, {Sectors} sectors of {SectorSize} bytes",
                channel, channel.ReportedPid, image.Sectors, image.SectorSize);
            return true;
        }
        catch (Exception e) when (e is IOException or XenStoreException)
        {
            foreach (var key in new[] { channel.Keys.Info, channel.Keys.SectorSize, channel.Keys.Sectors, channel.Keys.TapdiskPid })
            {
                try { await Xs.RemoveAsync(key).ConfigureAwait(false); } catch (XenStoreException) { }
            }
            await FaultAsync(channel, $"failure completing connection: {e.Message}").ConfigureAwait(false);
            return false;
        }
    }
}
