using BlkTapCtrl.Controller;
using BlkTapCtrl.Controller.ControlSocket;
using BlkTapCtrl.Controller.Devices;
using BlkTapCtrl.Controller.Hosting;
using BlkTapCtrl.Controller.Spawning;
using BlkTapCtrl.Controller.Startup;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging;
using Serilog;

// blktapctrl: the supervisor daemon (reference §1). Always in the foreground; systemd (Type=notify) or a
// test harness supervises it. Exit: 0 clean stop / duplicate instance / help, 1 fatal start-up, 22 usage.
var parsed = CommandLine.Parse(args, Environment.GetEnvironmentVariable);
if (parsed.ExitCode is { } early)
{
    (early == ExitCodes.Success ? Console.Out : Console.Error).WriteLine(parsed.Message);
    return early;
}
var options = parsed.Options!;
WorkerLogDir.ExportForWorkers(options.LogDir); // tapdisk's log and stats snapshot beside ours (tap-ctl stats reads it)

switch (PidFileLock.TryAcquire(options.PidFile, out var pidLock, out var problem))
{
    case PidFileLock.Outcome.HeldByAnother:
        Console.Error.WriteLine($"blktapctrl: {problem}: another instance is running, exiting");
        return ExitCodes.Success;
    case PidFileLock.Outcome.Failed:
        Console.Error.WriteLine($"blktapctrl: {problem}");
        return ExitCodes.StartupFailure;
}

using (pidLock)
{
    using var logging = LoggingSetup.Create(options);
    var logger = logging.Logger;
    var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true, Args = [] });
    builder.Services.AddSerilog(logger, dispose: false);
    builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = options.StopTimeout + TimeSpan.FromSeconds(10));
    builder.Services.AddSingleton(options);
    builder.Services.AddSingleton<ExitStatus>();
    builder.Services.AddSingleton<ISystemdNotifier, SystemdNotifier>();
    builder.Services.AddSingleton<IBlktapDevices>(_ => new EmulatedBlktapDevices(options.RunDir));
    builder.Services.AddSingleton(_ => new TapdiskLauncher(options.TapdiskProgram, options.SyslogFacility, Environment.GetEnvironmentVariable, options.SyslogSocket));
    builder.Services.AddSingleton(sp => new Supervisor(options, sp.GetRequiredService<ILoggerFactory>().CreateLogger("blktapctrl"),
        sp.GetRequiredService<IBlktapDevices>(), sp.GetRequiredService<TapdiskLauncher>(), sp.GetRequiredService<ISystemdNotifier>()));
    builder.Services.AddHostedService<ControllerService>();
    builder.Services.AddHostedService<ControlSocketService>();
    using var host = builder.Build();
    var supervisor = host.Services.GetRequiredService<Supervisor>();
    var exitStatus = host.Services.GetRequiredService<ExitStatus>();
    logger.Information("blktapctrl starting: xenstore {XenStore}, worker {Tapdisk}, run dir {RunDir}",
        options.XenStorePath, host.Services.GetRequiredService<TapdiskLauncher>().Program, options.RunDir);
    await host.RunAsync();
    await supervisor.DisposeAsync();
    int code = exitStatus.Code;
    logger.Information("blktapctrl exiting with status {Code}", code);
    return code;
}
