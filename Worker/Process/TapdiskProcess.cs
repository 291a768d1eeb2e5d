using BlkTapCtrl.Worker.Vbd;
using BlkTapCtrl.Worker.Control;
using BlkTapCtrl.Worker.Interop;
using BlkTapCtrl.Worker.Server;

namespace BlkTapCtrl.Worker.Process;

/// <summary>
/// The <c>tapdisk [-h] [-D] [-l facility] &lt;read-fifo&gt; &lt;write-fifo&gt;</c> process (reference §3.1):
/// server, control FIFOs, signals; runs until the last VBD closed and exits 0.
/// </summary>
public static class TapdiskProcess
{
    public const string Usage = "usage: tapdisk [-h] [-D] [-l <syslog facility>] <read fifo> <write fifo>";

    public static int Run(string[] args)
    {
        Logging.WorkerDiagnosticsOptions diagnosticsOptions;
        try { args = Logging.WorkerDiagnosticsOptions.Take(args, out diagnosticsOptions); }
        catch (ArgumentException e) { Console.Error.WriteLine(e.Message); return 1; }
        var positional = new List<string>();
        string facility = "daemon";
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            if (a == "-h") { Console.Out.WriteLine(Usage); return 0; }
            if (a == "-D") continue; // daemonizing is the supervisor's choice; we stay attached (CA-26523)
            if (a == "-l")
            {
                if (++i >= args.Length) { Console.Error.WriteLine(Usage); return 1; }
                facility = args[i];
                continue;
            }
            if (a.StartsWith("-l", StringComparison.Ordinal)) { facility = a[2..]; continue; }
            positional.Add(a);
        }
        if (positional.Count != 2)
        {
            Console.Error.WriteLine(Usage);
            return 1;
        }
        try { diagnosticsOptions.Facility = Logging.WorkerDiagnosticsOptions.ParseFacility(facility); }
        catch (ArgumentException e) { Console.Error.WriteLine(e.Message); return 1; }

        Lvm.LvmOptions lvmOptions;
        try { lvmOptions = Lvm.LvmOptions.FromEnvironment(); }
        catch (ArgumentException e) { Console.Error.WriteLine(e.Message); return 1; }
        var log = new Logging.WorkerLog();
        var options = new TapdiskServerOptions
        {
            Backend = TapdiskServerOptions.BackendFromEnvironment(),
            Log = log,
            Lvm = new Lvm.LvmReactivator(lvmOptions, log, Scheduling.MonotonicClock.Instance),
        };
        using var server = new TapdiskServer(options);
        using var diagnostics = new Logging.WorkerDiagnostics(server, diagnosticsOptions);
        FifoControlChannel channel;
        try
        {
            channel = new FifoControlChannel(server.Loop, positional[0], positional[1], server.Log);
        }
        catch (IOException e)
        {
            Console.Error.WriteLine($"tapdisk: {e.Message}");
            return 1;
        }
        using (channel)
        {
            using var nbdExports = new Frontends.NbdControlExports(server, Path.GetDirectoryName(Path.GetFullPath(positional[0]))!);
            var dispatcher = new ControlDispatcher(server, channel) { NbdExports = nbdExports };
            channel.Dispatcher = dispatcher;
            server.DebugIndexLines = () => IndexLines(server, channel);
            using var signals = new SignalWatcher(server.Loop);
            signals.Handler = sig => OnSignal(sig, server, dispatcher);
            // The filter logs a crash and keeps the log before the process dies; it never catches.
            try { server.Run(); }
            catch (Exception e) when (diagnostics.RecordCrash(e)) { throw; }
        }
        return 0;
    }

    private static IEnumerable<string> IndexLines(TapdiskServer server, FifoControlChannel channel)
    {
        ulong aio = 0;
        foreach (var q in server.Queues)
            if (q is IO.LinuxAioQueue lio) aio |= Scheduling.WakeupRing.MaskOf(lio.EventFd);
            else if (q is IO.IoUringQueue uring) aio |= Scheduling.WakeupRing.MaskOf(uring.EventFd);
        var vbds = new ulong[server.Vbds.Count];
        ulong known = Scheduling.WakeupRing.MaskOf(channel.ReadFd) | Scheduling.WakeupRing.MaskOf(channel.WriteFd) | aio;
        for (int i = 0; i < vbds.Length; i++) known |= vbds[i] = server.Vbds[i].FrontendFdMask;
        ulong other = 0;
        foreach (int fd in server.Loop.PolledFds) other |= Scheduling.WakeupRing.MaskOf(fd);
        other &= ~known;
        yield return $"index: ipc rfd:{Scheduling.WakeupRing.MaskOf(channel.ReadFd):x} wfd:{Scheduling.WakeupRing.MaskOf(channel.WriteFd):x} aio:{aio:x} other:{other:x}";
        // One line per VBD, in the server's order: the fds of its frontends (ring kick fd, NBD connections).
        for (int i = 0; i < vbds.Length; i++)
            yield return $"index: vbd [{i}]:{vbds[i]:x}";
    }

    /// <summary>INT/TERM/BUS close every VBD; XFSZ kills the queues and reports once; USR1 dumps.</summary>
    public static void OnSignal(int sig, TapdiskServer server, ControlDispatcher? dispatcher)
    {
        switch (sig)
        {
            case SignalWatcher.SigInt or SignalWatcher.SigTerm or SignalWatcher.SigBus:
                server.Log.Warn("tapdisk_server_signal_handler", $"signal {sig}: closing all VBDs");
                foreach (var vbd in server.Vbds.ToArray())
                {
                    if (!vbd.IsOpen && vbd.Chain == null) vbd.ForceShutdown();
                    else vbd.Close();
                }
                if (server.Vbds.Count == 0) server.Stop();
                break;
            case SignalWatcher.SigXfsz:
                server.Log.Error(Errno.EFBIG, "tapdisk_server_signal_handler", "received SIGXFSZ, closing queues");
                foreach (var vbd in server.Vbds) vbd.KillQueue();
                dispatcher?.SendXfszError();
                break;
            case SignalWatcher.SigUsr1:
                foreach (var line in server.DebugDump()) server.Log.Warn("tapdisk_server_debug", line);
                server.Log.MakePrecious();
                break;
        }
    }
}
