using System.Globalization;
using BlkTapCtrl.Worker.Server;
using BlkTapCtrl.Worker.Vbd;

namespace BlkTapCtrl.Worker.Frontends;

/// <summary>
/// The NBD export of every VBD a controller OPENs (issue 6 item 2). Convention shared with the controller's
/// <c>EmulatedBlktapDevices</c>: the socket is <c>&lt;directory of the control FIFOs&gt;/nbd&lt;minor&gt;.sock</c>,
/// minor = the OPEN record's devnum. It listens before OPEN_RSP goes out, so the controller finds it when it
/// publishes <c>&lt;backend&gt;/nbd-socket</c>; it stays up across PAUSE/RESUME (requests wait on the VBD's
/// <i>new</i> queue while paused, so clients see no error), and is removed when the VBD closes, before
/// CLOSE_RSP. A socket that cannot be created costs the export, never the VBD: the failure is logged.
/// Loop thread only.
/// </summary>
public sealed class NbdControlExports(TapdiskServer server, string fifoDirectory) : IDisposable
{
    private readonly Dictionary<ushort, NbdServer> _servers = [];

    public static string SocketPath(string fifoDirectory, uint minor) =>
        Path.Combine(fifoDirectory, string.Create(CultureInfo.InvariantCulture, $"nbd{minor}.sock"));

    /// <summary>Called by the dispatcher once OPEN succeeded, before OPEN_RSP.</summary>
    public void Export(VirtualBlockDevice vbd, uint minor)
    {
        Remove(vbd.Cookie);
        string path = SocketPath(fifoDirectory, minor);
        var nbd = new NbdServer(server.Loop, new NbdExport(vbd), server.Log);
        try
        {
            nbd.Listen(new NbdEndpoint(path, null, 0));
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or UnauthorizedAccessException)
        {
            nbd.Dispose();
            server.Log.Error(Interop.Errno.EIO, "nbd_export", $"VBD {vbd.Cookie}: no NBD export at {path}: {e.Message}");
            return;
        }
        _servers[vbd.Cookie] = nbd;
        vbd.ControlReplies = new ClosingReplies(vbd.ControlReplies, this);
    }

    private void Remove(ushort cookie)
    {
        if (_servers.Remove(cookie, out var old))
            old.Dispose();
    }

    public void Dispose()
    {
        foreach (var s in _servers.Values) s.Dispose();
        _servers.Clear();
    }

    /// <summary>Passes the VBD's replies on, taking its export down first when it closes.</summary>
    private sealed class ClosingReplies(IVbdControlReplies? inner, NbdControlExports exports) : IVbdControlReplies
    {
        public void PauseCompleted(VirtualBlockDevice vbd) => inner?.PauseCompleted(vbd);

        public void CloseCompleted(VirtualBlockDevice vbd)
        {
            exports.Remove(vbd.Cookie);
            inner?.CloseCompleted(vbd);
        }
    }
}
