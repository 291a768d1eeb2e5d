using System.CommandLine;

namespace BlkTapCtrl.Controller.Startup;

/// <summary>
/// <c>blktapctrl [--xenstore PATH] [--tapdisk PATH] [--run-dir DIR] [--log-dir DIR] [--pid-file PATH] [--syslog-socket PATH] [-l FACILITY]</c>.
/// Always runs in the foreground (systemd Type=notify supervises it).
/// </summary>
public static class CommandLine
{
    public sealed record Result(ControllerOptions? Options, int? ExitCode, string? Message);

    public static Result Parse(string[] args, Func<string, string?> environment)
    {
        var xenstore = new Option<string?>("--xenstore") { Description = "XenStore unix socket (default $XENSTORED_PATH, else /var/run/xenstored/socket)" };
        var tapdisk = new Option<string>("--tapdisk") { Description = "worker program (the TAPDISK environment variable overrides it)", DefaultValueFactory = _ => "tapdisk" };
        var runDir = new Option<string>("--run-dir") { Description = "FIFOs and sockets of the workers", DefaultValueFactory = _ => ControllerOptions.DefaultRunDir };
        var logDir = new Option<string>("--log-dir") { Description = "log files", DefaultValueFactory = _ => ControllerOptions.DefaultLogDir };
        var pidFile = new Option<string?>("--pid-file") { Description = "pid file, locked while the daemon runs (default <run-dir>/blktapctrl.pid)" };
        var controlSocket = new Option<string?>("--control-socket") { Description = "tap-ctl's control socket (default <run-dir>/blktapctrl.sock)" };
        var syslogSocket = new Option<string>(Diagnostics.Syslog.SyslogClientOptions.CommandLineOption) { Description = "syslog daemon's datagram socket", DefaultValueFactory = _ => Diagnostics.Syslog.SyslogClientOptions.DefaultSocketPath };
        var facility = new Option<string>("-l") { Description = "syslog facility, name or number", DefaultValueFactory = _ => "daemon" };
        var pidTimeout = new Option<double>("--pid-timeout") { Description = "seconds a new worker has to answer PID", DefaultValueFactory = _ => 10 };
        var waitTimeout = new Option<double>("--wait-timeout") { Description = "seconds a worker has to answer OPEN/PAUSE/RESUME/CLOSE", DefaultValueFactory = _ => 150 };
        var stopTimeout = new Option<double>("--stop-timeout") { Description = "seconds to wait for workers to close on SIGTERM", DefaultValueFactory = _ => 20 };
        var root = new RootCommand("blktapctrl: supervises one tapdisk per Xen virtual block device")
        {
            xenstore, tapdisk, runDir, logDir, pidFile, controlSocket, syslogSocket, facility, pidTimeout, waitTimeout, stopTimeout,
        };

        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
            return Usage(string.Join("; ", parsed.Errors.Select(e => e.Message)), root);
        if (parsed.Action is System.CommandLine.Help.HelpAction)
        {
            var help = new StringWriter();
            parsed.InvocationConfiguration.Output = help;
            parsed.Invoke();
            return new Result(null, ExitCodes.Success, help.ToString());
        }

        var facilityText = parsed.GetValue(facility)!;
        if (SyslogFacility.Parse(facilityText) is not { } facilityCode)
            return Usage($"-l: unknown syslog facility '{facilityText}'", root);
        foreach (var (name, value) in new[] { ("--pid-timeout", parsed.GetValue(pidTimeout)), ("--wait-timeout", parsed.GetValue(waitTimeout)), ("--stop-timeout", parsed.GetValue(stopTimeout)) })
            if (!(value > 0) || value > 3600)
                return Usage($"{name}: {value} is not between 0 and 3600 seconds", root);

        var run = parsed.GetValue(runDir)!;
        var options = new ControllerOptions
        {
            XenStorePath = parsed.GetValue(xenstore) ?? NonEmpty(environment("XENSTORED_PATH")) ?? ControllerOptions.DefaultXenStorePath,
            TapdiskProgram = parsed.GetValue(tapdisk)!,
            RunDir = run,
            LogDir = parsed.GetValue(logDir)!,
            PidFile = parsed.GetValue(pidFile) ?? Path.Combine(run, "blktapctrl.pid"),
            ControlSocketPath = parsed.GetValue(controlSocket),
            SyslogFacility = facilityCode,
            SyslogSocket = parsed.GetValue(syslogSocket)!,
            PidTimeout = TimeSpan.FromSeconds(parsed.GetValue(pidTimeout)),
            WaitTimeout = TimeSpan.FromSeconds(parsed.GetValue(waitTimeout)),
            StopTimeout = TimeSpan.FromSeconds(parsed.GetValue(stopTimeout)),
        };
        return new Result(options, null, null);
    }

    private static string? NonEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;

    private static Result Usage(string problem, RootCommand root)
    {
        var usage = $"blktapctrl: {problem}\nusage: blktapctrl [--xenstore PATH] [--tapdisk PATH] [--run-dir DIR] [--log-dir DIR] " +
                    "[--pid-file PATH] [--control-socket PATH] [--syslog-socket PATH] [-l FACILITY] [--pid-timeout S] [--wait-timeout S] [--stop-timeout S]";
        _ = root;
        return new Result(null, ExitCodes.Usage, usage);
    }
}
