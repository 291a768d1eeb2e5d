namespace BlkTapCtrl.Diagnostics.Syslog;

/// <summary>Wire format of a syslog datagram.</summary>
public enum SyslogPacketFormat
{
    /// <summary>BSD syslog, what /dev/log readers expect: <c>&lt;PRI&gt;Mmm dd HH:MM:SS IDENT[pid]: text</c>.</summary>
    Rfc3164,

    /// <summary><c>&lt;PRI&gt;1 2026-11-25T12:00:00.123456+00:00 HOST IDENT PID - - text</c>.</summary>
    Rfc5424,
}
