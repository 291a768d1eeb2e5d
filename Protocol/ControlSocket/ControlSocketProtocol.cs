namespace BlkTapCtrl.Protocol.ControlSocket;

/// <summary>
/// The controller's local control socket (docs/control-socket.md): a unix stream socket, mode 0600, that
/// <c>blktapctrl</c> serves and <c>tap-ctl</c> talks to. One request per connection line, one response line
/// back: each a single-line UTF-8 JSON object ending in <c>\n</c>. A connection may carry several requests.
/// </summary>
public static class ControlSocketProtocol
{
    /// <summary>The socket's file name inside the controller's run directory.</summary>
    public const string SocketFileName = "blktapctrl.sock";

    /// <summary>Longest request or response line accepted (a list of 256 VBDs fits many times over).</summary>
    public const int MaxLineBytes = 1 << 20;

    /// <summary>Requests: <c>{"op":"info"}</c>, <c>{"op":"list"}</c>, <c>{"op":"stats","domid":N,"devid":N}</c>.</summary>
    public const string OpInfo = "info";
    public const string OpList = "list";
    public const string OpStats = "stats";

    public static string DefaultSocketPath(string runDir) => Path.Combine(runDir, SocketFileName);
}
