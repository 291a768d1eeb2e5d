namespace BlkTapCtrl.Controller.Startup;

/// <summary>The daemon's settings, from the command line and environment (issue 7, reference §1.1).</summary>
public sealed record ControllerOptions
{
    public const string DefaultXenStorePath = "/var/run/xenstored/socket";
    public const string DefaultRunDir = "/var/run/blktap";
    public const string DefaultLogDir = "/var/log/blktap";

    /// <summary>XenStore unix socket: <c>--xenstore</c>, else <c>XENSTORED_PATH</c>, else the default.</summary>
    public required string XenStorePath { get; init; }

    /// <summary>
    /// The worker program as given by <c>--tapdisk</c> (PATH search when it has no slash). The
    /// <c>TAPDISK</c> environment variable overrides it (CA-26523), resolved at spawn time.
    /// </summary>
    public string TapdiskProgram { get; init; } = "tapdisk";

    /// <summary>FIFOs, NBD sockets and ring files of the workers.</summary>
    public string RunDir { get; init; } = DefaultRunDir;

    public string LogDir { get; init; } = DefaultLogDir;

    /// <summary><c>--control-socket</c>; default <c>&lt;run-dir&gt;/blktapctrl.sock</c> (tap-ctl's socket, docs/control-socket.md).</summary>
    public string? ControlSocketPath { get; init; }

    public string ControlSocket => ControlSocketPath ?? Protocol.ControlSocket.ControlSocketProtocol.DefaultSocketPath(RunDir);

    /// <summary>Pid file with an exclusive lock; default <c>&lt;run-dir&gt;/blktapctrl.pid</c>.</summary>
    public required string PidFile { get; init; }

    /// <summary>Syslog facility code (LOG_DAEMON = 24 …), passed on to every worker as <c>-l&lt;n&gt;</c>.</summary>
    public int SyslogFacility { get; init; } = Startup.SyslogFacility.Daemon;

    /// <summary>The syslog daemon's datagram socket (<c>--syslog-socket</c>, default /dev/log).</summary>
    public string SyslogSocket { get; init; } = Diagnostics.Syslog.SyslogClientOptions.DefaultSocketPath;

    /// <summary>How long a worker may take to answer PID before it is killed (§6: every wait has a deadline).</summary>
    public TimeSpan PidTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Deadline of the other wait states (open, pause, resume, close).</summary>
    public TimeSpan WaitTimeout { get; init; } = TimeSpan.FromSeconds(150);

    /// <summary>On SIGTERM: how long to wait for every worker to answer CLOSE and exit.</summary>
    public TimeSpan StopTimeout { get; init; } = TimeSpan.FromSeconds(20);
}
