namespace BlkTapCtrl.Diagnostics.Syslog;

/// <summary>
/// What a syslog client did so far. Messages and Bytes count everything logged (sent, queued or dropped);
/// Transmits are datagrams the daemon accepted; Failed are sends that failed with anything but EAGAIN
/// (no daemon, refused); Dropped are messages lost because the ring was full.
/// </summary>
public readonly record struct SyslogStatistics(long Messages, long Bytes, long Transmits, long Failed, long Dropped,
    int Queued);
