using BlkTapCtrl.Protocol.Control;
using BlkTapCtrl.Worker.Frontends;
using BlkTapCtrl.Worker.Images;
using BlkTapCtrl.Worker.Process;
using BlkTapCtrl.Worker.Server;
using BlkTapCtrl.Worker.Vbd;

namespace BlkTapCtrl.Worker.Standalone;

/// <summary>
/// <c>tapdisk serve &lt;type:path&gt; --nbd unix:PATH|tcp:HOST:PORT [--readonly] [--backend uring|aio|sync]
/// [--cache none|writeback] [--export-name NAME]</c>: one image exported over NBD without a
/// controller, like qemu-nbd. Prints <c>listening on &lt;endpoint&gt;</c> per endpoint (with the real
/// port when 0 was asked) and runs until SIGTERM/SIGINT, then closes the VBD cleanly and exits 0.
/// </summary>
public static class ServeCommand
{
    public const string Usage =
        "usage: tapdisk serve <aio|ram|vhd>:<path> [--nbd unix:PATH|tcp:HOST:PORT …] [--ring unix:PATH] [--readonly] " +
        "[--backend uring|aio|sync] [--cache none|writeback] [--export-name NAME] [--syslog-socket PATH] [--log-dir DIR]";

    /// <param name="RingSocket">Unix socket of a shared-memory blkif ring device (<c>--ring unix:PATH</c>), or null.</param>
    public sealed record Options(DriverType Type, string Path, IReadOnlyList<NbdEndpoint> Endpoints, bool ReadOnly,
        IoBackendKind Backend, bool Writeback, string ExportName, string? RingSocket = null);

    /// <summary>Parses the arguments after <c>serve</c>; throws <see cref="FormatException"/> naming the bad one.</summary>
    public static Options Parse(IReadOnlyList<string> args)
    {
        string? image = null;
        var endpoints = new List<NbdEndpoint>();
        bool readOnly = false, writeback = false;
        var backend = IoBackendKind.IoUring;
        string exportName = "";
        string? ring = null;
        for (int i = 0; i < args.Count; i++)
        {
            string a = args[i];
            string Value()
            {
                if (++i >= args.Count) throw new FormatException($"{a} needs a value");
                return args[i];
            }
            switch (a)
            {
                case "--nbd": endpoints.Add(NbdEndpoint.Parse(Value())); break;
                case "--readonly": readOnly = true; break;
                case "--ring":
                    ring = Value();
                    if (!ring.StartsWith("unix:", StringComparison.Ordinal) || ring.Length == 5)
                        throw new FormatException($"--ring '{ring}': expected unix:PATH");
                    ring = ring[5..];
                    break;
                case "--export-name": exportName = Value(); break;
                case "--backend":
                    string name = Value();
                    backend = TapdiskServerOptions.ParseBackend(name)
                              ?? throw new FormatException($"--backend '{name}': expected aio, sync or uring");
                    break;
                case "--cache":
                    writeback = Value() switch
                    {
                        "none" => false,
                        "writeback" => true,
                        var v => throw new FormatException($"--cache '{v}': expected none or writeback"),
                    };
                    break;
                default:
                    if (a.StartsWith('-')) throw new FormatException($"unknown option '{a}'");
                    if (image != null) throw new FormatException($"second image '{a}' (one image per serve)");
                    image = a;
                    break;
            }
        }
        if (image == null) throw new FormatException("no image given");
        if (endpoints.Count == 0 && ring == null) throw new FormatException("no --nbd endpoint or --ring given");
        int colon = image.IndexOf(':');
        if (colon <= 0 || colon == image.Length - 1) throw new FormatException($"image '{image}': expected type:path");
        var type = image[..colon] switch
        {
            "aio" => DriverType.Aio,
            "ram" => DriverType.Ram,
            "vhd" => DriverType.Vhd,
            var t => throw new FormatException($"image type '{t}': expected aio, ram or vhd"),
        };
        return new Options(type, image[(colon + 1)..], endpoints, readOnly, backend, writeback, exportName, ring);
    }

    public static int Run(IReadOnlyList<string> args)
    {
        Options options;
        Logging.WorkerDiagnosticsOptions diagnosticsOptions;
        try { options = Parse(Logging.WorkerDiagnosticsOptions.Take([.. args], out diagnosticsOptions)); }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            Console.Error.WriteLine($"tapdisk serve: {e.Message}");
            Console.Error.WriteLine(Usage);
            return 22; // EINVAL
        }

        // `tapdisk serve` runs in the foreground like qemu-nbd: its operator reads stderr.
        diagnosticsOptions.EchoTo = Console.Error;
        using var server = new TapdiskServer(new TapdiskServerOptions { Backend = options.Backend });
        using var diagnostics = new Logging.WorkerDiagnostics(server, diagnosticsOptions);
        var vbd = server.CreateVbd(1);
        var flags = options.ReadOnly ? ImageOpenFlags.ReadOnly : ImageOpenFlags.None;
        if (options.Writeback) flags |= ImageOpenFlags.Buffered;
        int err = vbd.Open(new VbdOpenParameters(options.Path, options.Type, flags));
        if (err != 0)
        {
            Console.Error.WriteLine($"tapdisk serve: cannot open {options.Type.ToString().ToLowerInvariant()}:{options.Path}: {Interop.Errno.Name(err)}");
            return Math.Abs(err);
        }

        using var nbd = new NbdServer(server.Loop, new NbdExport(vbd, options.ExportName, options.ReadOnly), server.Log);
        // Signals are watched before "listening on" is printed: a SIGTERM right after it must close cleanly.
        using var signals = new SignalWatcher(server.Loop);
        signals.Handler = sig =>
        {
            if (sig is SignalWatcher.SigTerm or SignalWatcher.SigInt)
            {
                server.Log.Info("tapdisk_serve", $"signal {sig}: closing the export");
                nbd.Stop();
                vbd.Close(); // EAGAIN while requests drain: the server retries each pass and Run returns after
                if (server.Vbds.Count == 0) server.Stop();
            }
            else
            {
                TapdiskProcess.OnSignal(sig, server, null);
            }
        };
        SharedMemoryRingDevice? ringDevice = null;
        RingFrontend? ring = null;
        try
        {
            foreach (var endpoint in options.Endpoints)
                Console.Out.WriteLine($"listening on {nbd.Listen(endpoint)}");
            if (options.RingSocket != null)
            {
                var hello = new Protocol.Blkif.SharedMemory.SharedRingHello(options.ReadOnly ? Protocol.Blkif.SharedMemory.SharedRingHello.ReadOnlyFlag : 0,
                    vbd.Sectors, vbd.SectorSize, Protocol.Blkif.BlkifLayout.MappingPages);
                ringDevice = new SharedMemoryRingDevice(server.Loop, options.RingSocket, hello, server.Log);
                ring = new RingFrontend(server.Loop, vbd, ringDevice, server.Log);
                Console.Out.WriteLine($"ring on unix:{options.RingSocket}");
            }
            Console.Out.Flush();
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException or FormatException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"tapdisk serve: cannot listen: {e.Message}");
            vbd.Close();
            return 98; // EADDRINUSE-ish: the endpoint is unusable
        }

        // The filter logs a crash and keeps the log before the process dies; it never catches.
        try { server.Run(); }
        catch (Exception e) when (diagnostics.RecordCrash(e)) { throw; }
        ring?.Dispose();
        ringDevice?.Dispose();
        return 0;
    }
}
