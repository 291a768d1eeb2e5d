namespace BlkTapCtrl.Diagnostics.Syslog;

/// <summary>How a <see cref="SyslogClient"/> reaches the syslog daemon and stamps its packets.</summary>
public sealed class SyslogClientOptions
{
    /// <summary>The default daemon socket; every executable takes <c>--syslog-socket PATH</c> to override it.</summary>
    public const string DefaultSocketPath = "/dev/log";

    /// <summary>The command-line option every executable accepts for <see cref="SocketPath"/>.</summary>
    public const string CommandLineOption = "--syslog-socket";

    public string SocketPath { get; init; } = DefaultSocketPath;

    /// <summary>Program name in each packet, e.g. <c>tapdisk</c>; the pid is appended as <c>[pid]</c>.</summary>
    public string Ident { get; init; } = "tapdisk";

    public int ProcessId { get; init; } = Environment.ProcessId;

    public SyslogFacility Facility { get; init; } = SyslogFacility.Daemon;

    public SyslogPacketFormat Format { get; init; } = SyslogPacketFormat.Rfc3164;

    /// <summary>
    /// Bytes of the ring holding messages the daemon could not take yet (EAGAIN). Fixed at construction so a
    /// stalled daemon costs bounded memory and no allocation; the original used 7 KiB, we allow more lines.
    /// </summary>
    public int RingBytes { get; init; } = 64 * 1024;

    /// <summary>Prefix of the client's own status lines (drop and close reports).</summary>
    public string StatusPrefix { get; init; } = "tapdisk-syslog";

    /// <summary>How long <see cref="SyslogClient.Dispose"/> waits for the daemon to take queued messages.</summary>
    public TimeSpan CloseDrainTimeout { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Clock for packet timestamps (tests pin it).</summary>
    public TimeProvider Clock { get; init; } = TimeProvider.System;
}
