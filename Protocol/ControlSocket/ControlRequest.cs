namespace BlkTapCtrl.Protocol.ControlSocket;

/// <summary>One request on the control socket; <see cref="DomId"/>/<see cref="DevId"/> name a VBD where the op needs one.</summary>
public sealed record ControlRequest(string Op, int? DomId = null, int? DevId = null);

/// <summary>What the controller reports about itself (<c>info</c>): where it runs and which dom0 it serves.</summary>
public sealed record ControllerInfo(int Pid, int Dom0, string XenStorePath, string RunDir, string LogDir);

/// <summary>
/// One VBD as <c>list</c> reports it: its backend, cookie, minor, the three machines' states, the worker's pid,
/// the image it serves, and how clients reach it (NBD socket, shared-memory ring).
/// </summary>
public sealed record ChannelInfo
{
    public int DomId { get; init; }
    public int DevId { get; init; }
    public string Backend { get; init; } = "";
    public int Cookie { get; init; }
    /// <summary>−1 when no device number is allocated.</summary>
    public int Minor { get; init; } = -1;
    public string ChannelState { get; init; } = "";
    public string VbdState { get; init; } = "";
    public string ShutdownState { get; init; } = "";
    public bool ShutdownForce { get; init; }
    /// <summary>The pid tapdisk reported (PID_RSP), 0 when none.</summary>
    public int Pid { get; init; }
    /// <summary>The image chain's leaf as <c>type:path</c> (the <c>params</c> last read), empty before open.</summary>
    public string Params { get; init; } = "";
    /// <summary>The chain the worker has open, leaf first (<c>type:path</c>), from its stats snapshot; empty when not known.</summary>
    public IReadOnlyList<string> Images { get; init; } = [];
    public bool ReadOnly { get; init; }
    /// <summary>The worker's NBD export of this VBD, empty until it exists.</summary>
    public string NbdSocket { get; init; } = "";
    public string Ring { get; init; } = "";
}
