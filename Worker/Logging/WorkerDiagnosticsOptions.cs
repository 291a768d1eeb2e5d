using BlkTapCtrl.Diagnostics.Syslog;

namespace BlkTapCtrl.Worker.Logging;

/// <summary>
/// Where tapdisk logs: <c>--syslog-socket PATH</c> (default /dev/log), <c>--log-dir DIR</c> (default
/// /var/log/blktap, also <c>$TAPDISK_LOG_DIR</c>), and the facility from <c>-l</c>.
/// </summary>
public sealed class WorkerDiagnosticsOptions
{
    public const string LogDirOption = "--log-dir";
    public const string DefaultLogDir = "/var/log/blktap";

    public string SyslogSocket { get; set; } = SyslogClientOptions.DefaultSocketPath;
    public string LogDir { get; set; } = Environment.GetEnvironmentVariable("TAPDISK_LOG_DIR") is { Length: > 0 } d ? d : DefaultLogDir;
    public SyslogFacility Facility { get; set; } = SyslogFacility.Daemon;

    /// <summary>
    /// Foreground runs (<c>tapdisk serve</c>, like qemu-nbd) whose operator reads stderr set this to
    /// <see cref="Console.Error"/>: every log line and error is echoed there too, besides the log file and syslog.
    /// A worker under blktapctrl leaves it null (nobody reads its stderr).
    /// </summary>
    public TextWriter? EchoTo { get; set; }

    /// <summary>How often the stats snapshot file is refreshed while counters change.</summary>
    public long StatsIntervalMicroseconds { get; set; } = 1_000_000;

    /// <summary>
    /// How long a line may wait in the log file's buffer before it is written (the timer runs only while lines
    /// wait): a burst of lines costs one write(), and a killed process loses at most this much of its log.
    /// </summary>
    public long LogFlushIntervalMicroseconds { get; set; } = 1_000_000;

    /// <summary>
    /// Removes the diagnostics options from <paramref name="args"/> (so the §3.1 command line stays as it was)
    /// and returns the rest. Throws <see cref="ArgumentException"/> for an option without its value.
    /// </summary>
    public static string[] Take(string[] args, out WorkerDiagnosticsOptions options)
    {
        options = new WorkerDiagnosticsOptions();
        var rest = new List<string>(args.Length);
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            if (a == SyslogClientOptions.CommandLineOption || a == LogDirOption)
            {
                if (i + 1 >= args.Length || args[i + 1].Length == 0)
                    throw new ArgumentException($"tapdisk: option {a} needs a value");
                if (a == LogDirOption) options.LogDir = args[++i];
                else options.SyslogSocket = args[++i];
                continue;
            }
            rest.Add(a);
        }
        return rest.ToArray();
    }

    /// <summary>
    /// The facility given with <c>-l</c>: a name (daemon, user, local0…local7, …) or a number. blktapctrl passes
    /// the C LOG_* value (facility code · 8, e.g. 24 for daemon), so a multiple of 8 is read that way; a smaller
    /// number is taken as the bare code. Anything else is an error.
    /// </summary>
    public static SyslogFacility ParseFacility(string name)
    {
        if (int.TryParse(name, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n))
        {
            int code = n % 8 == 0 && n / 8 <= (int)SyslogFacility.Local7 ? n / 8 : n;
            if (code is >= 0 and <= (int)SyslogFacility.Local7 && Enum.IsDefined((SyslogFacility)code))
                return (SyslogFacility)code;
            throw new ArgumentException($"tapdisk: unknown syslog facility '{name}'");
        }
        return ParseFacilityName(name);
    }

    private static SyslogFacility ParseFacilityName(string name) => name.ToLowerInvariant() switch
    {
        "kern" or "kernel" => SyslogFacility.Kernel,
        "user" => SyslogFacility.User,
        "mail" => SyslogFacility.Mail,
        "daemon" => SyslogFacility.Daemon,
        "auth" => SyslogFacility.Auth,
        "syslog" => SyslogFacility.Syslog,
        "lpr" => SyslogFacility.Lpr,
        "news" => SyslogFacility.News,
        "uucp" => SyslogFacility.Uucp,
        "cron" => SyslogFacility.Cron,
        "authpriv" => SyslogFacility.AuthPriv,
        "ftp" => SyslogFacility.Ftp,
        "local0" => SyslogFacility.Local0,
        "local1" => SyslogFacility.Local1,
        "local2" => SyslogFacility.Local2,
        "local3" => SyslogFacility.Local3,
        "local4" => SyslogFacility.Local4,
        "local5" => SyslogFacility.Local5,
        "local6" => SyslogFacility.Local6,
        "local7" => SyslogFacility.Local7,
        _ => throw new ArgumentException($"tapdisk: unknown syslog facility '{name}'"),
    };
}
