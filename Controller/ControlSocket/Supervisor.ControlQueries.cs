using BlkTapCtrl.Controller.Channels;
using BlkTapCtrl.Protocol.ControlSocket;

namespace BlkTapCtrl.Controller;

// What the control socket asks of the supervisor. Channels are touched only by the main loop, so every
// query runs there as one more event (LoopCall) and its answer is handed back through a task.
public sealed partial class Supervisor
{
    private sealed record LoopCall(Func<Task> Run);

    /// <summary>Runs <paramref name="query"/> on the main loop and returns its result.</summary>
    private Task<T> OnLoopAsync<T>(Func<T> query)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(new LoopCall(() =>
        {
            try { done.TrySetResult(query()); }
            catch (Exception e) { done.TrySetException(e); }
            return Task.CompletedTask;
        }));
        return done.Task;
    }

    /// <summary>Where this controller runs (<c>info</c>).</summary>
    public ControllerInfo Info() => new(Environment.ProcessId, Dom0, _options.XenStorePath, _options.RunDir, _options.LogDir);

    /// <summary>Every channel, newest first as the supervisor lists them (<c>list</c>).</summary>
    public Task<IReadOnlyList<ChannelInfo>> ListChannelsAsync() =>
        OnLoopAsync<IReadOnlyList<ChannelInfo>>(() => _channels.Where(c => !c.Destroyed).Select(Describe).ToList());

    /// <summary>One channel by (domid, devid), or null.</summary>
    public Task<ChannelInfo?> FindChannelAsync(int domId, int devId) =>
        OnLoopAsync(() => _channels.FirstOrDefault(c => !c.Destroyed && c.Backend.DomId == domId && c.Backend.DevId == devId) is { } c
            ? Describe(c) : null);

    private static ChannelInfo Describe(TapChannel c) => new()
    {
        DomId = c.Backend.DomId,
        DevId = c.Backend.DevId,
        Backend = c.Backend.Path,
        Cookie = c.Cookie,
        Minor = c.Device?.Minor ?? -1,
        ChannelState = c.Channel.State.ToString(),
        VbdState = c.Vbd.State.ToString(),
        ShutdownState = c.Shutdown.State.ToString(),
        ShutdownForce = c.Shutdown.Force,
        Pid = c.Link != null && !c.Link.Exited ? c.ReportedPid : 0,
        Params = c.Params is { } p ? $"{p.Handle}:{p.VdiPath}" : "",
        ReadOnly = c.ReadOnly,
        NbdSocket = c.Device is { } d && c.Link != null && File.Exists(d.NbdSocket) ? d.NbdSocket : "",
        Ring = c.Device?.RingDevice ?? "",
    };
}
