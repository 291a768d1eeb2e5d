using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using BlkTapCtrl.Protocol.ControlSocket;
using BlkTapCtrl.StateMachines.Graphs;

namespace BlkTapCtrl.Tools.TapCtl.Commands;

/// <summary>The subcommands: list, stats, pause, unpause, graph, spawn, close.</summary>
public static class TapCtlCommands
{
    private static readonly Option<string?> Socket = new("--socket")
    {
        Description = "blktapctrl's control socket (default $BLKTAPCTRL_SOCKET, else /var/run/blktap/blktapctrl.sock)",
        Recursive = true,
    };
    private static readonly Option<string?> XenStorePath = new("--xenstore")
    {
        Description = "XenStore socket for pause/unpause/spawn/close (default $XENSTORED_PATH, else the controller's)",
        Recursive = true,
    };

    private static Option<int> DomId() => new("-d", "--domid") { Description = "guest domain id", Required = true };
    private static Option<int> DevId() => new("-v", "--devid") { Description = "virtual device id", Required = true };
    private static Option<double> Timeout(double seconds) => new("-t", "--timeout")
    {
        Description = "seconds to wait for the controller", DefaultValueFactory = _ => seconds,
    };

    public static void AddTo(RootCommand root)
    {
        root.Options.Add(Socket);
        root.Options.Add(XenStorePath);
        root.Subcommands.Add(List());
        root.Subcommands.Add(Stats());
        root.Subcommands.Add(Pause());
        root.Subcommands.Add(Unpause());
        root.Subcommands.Add(Graph());
        root.Subcommands.Add(Spawn());
        root.Subcommands.Add(Close());
    }

    private static async Task<ControllerConnection> ConnectAsync(ParseResult r, CancellationToken ct) =>
        await ControllerConnection.ConnectAsync(ControllerConnection.ResolvePath(r.GetValue(Socket)), ct).ConfigureAwait(false);

    private static TimeSpan Seconds(ParseResult r, Option<double> option)
    {
        double s = r.GetValue(option);
        if (!(s > 0) || s > 3600)
            throw new TapCtlException(ExitCodes.Usage, $"--timeout: {s.ToString(CultureInfo.InvariantCulture)} is not between 0 and 3600 seconds");
        return TimeSpan.FromSeconds(s);
    }

    private static Command List()
    {
        var json = new Option<bool>("--json") { Description = "JSON array instead of the table" };
        var command = new Command("list", "every VBD the controller tracks: ids, cookie, minor, states, pid, image, NBD socket, ring") { json };
        command.SetAction(async (r, ct) =>
        {
            using var controller = await ConnectAsync(r, ct).ConfigureAwait(false);
            var channels = await controller.ListAsync(ct).ConfigureAwait(false);
            if (r.GetValue(json))
            {
                using var stdout = Console.OpenStandardOutput();
                using (var w = new Utf8JsonWriter(stdout, new JsonWriterOptions { Indented = true }))
                {
                    w.WriteStartArray();
                    foreach (var c in channels)
                    {
                        w.WriteStartObject();
                        ControlSocketJson.WriteChannel(w, c);
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                }
                stdout.Write("\n"u8);
            }
            else
                Console.Out.Write(ListTable.Format(channels));
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Stats()
    {
        var domId = DomId();
        var devId = DevId();
        var command = new Command("stats", "live counters, queues and error buckets of one VBD as JSON (docs/tapdisk-stats.md)") { domId, devId };
        command.SetAction(async (r, ct) =>
        {
            using var controller = await ConnectAsync(r, ct).ConfigureAwait(false);
            using var doc = await controller.RequestAsync(new ControlRequest(ControlSocketProtocol.OpStats, r.GetValue(domId), r.GetValue(devId)), ct).ConfigureAwait(false);
            using var stdout = Console.OpenStandardOutput();
            using (var w = new Utf8JsonWriter(stdout, new JsonWriterOptions { Indented = true }))
            {
                w.WriteStartObject();
                foreach (var p in doc.RootElement.EnumerateObject())
                    if (p.Name != "ok") p.WriteTo(w);
                w.WriteEndObject();
            }
            stdout.Write("\n"u8);
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Pause()
    {
        var domId = DomId();
        var devId = DevId();
        var timeout = Timeout(30);
        var command = new Command("pause", "pause a VBD as the toolstack does: create 'pause', wait for 'pause-done'") { domId, devId, timeout };
        command.SetAction(async (r, ct) =>
        {
            using var controller = await ConnectAsync(r, ct).ConfigureAwait(false);
            await using var toolstack = await Toolstack.ConnectAsync(controller, r.GetValue(XenStorePath), ct).ConfigureAwait(false);
            await toolstack.PauseAsync(r.GetValue(domId), r.GetValue(devId), Seconds(r, timeout), ct).ConfigureAwait(false);
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Unpause()
    {
        var domId = DomId();
        var devId = DevId();
        var timeout = Timeout(30);
        var args = new Option<string?>("-a", "--args") { Description = "new params (type:path) written before unpausing, e.g. the new leaf after a snapshot" };
        var command = new Command("unpause", "unpause a VBD: optionally rewrite 'params', remove 'pause', wait until it runs") { domId, devId, args, timeout };
        command.SetAction(async (r, ct) =>
        {
            string? newParams = r.GetValue(args);
            if (newParams is { } p && !p.Contains(':', StringComparison.Ordinal))
                throw new TapCtlException(ExitCodes.Usage, $"-a: '{p}' is not type:path");
            using var controller = await ConnectAsync(r, ct).ConfigureAwait(false);
            await using var toolstack = await Toolstack.ConnectAsync(controller, r.GetValue(XenStorePath), ct).ConfigureAwait(false);
            await toolstack.UnpauseAsync(r.GetValue(domId), r.GetValue(devId), newParams, Seconds(r, timeout), ct).ConfigureAwait(false);
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Graph()
    {
        var machine = new Argument<string>("machine") { Description = "channel, vbd, shutdown or all", DefaultValueFactory = _ => "all" };
        machine.AcceptOnlyFromAmong("channel", "vbd", "shutdown", "all");
        var format = new Option<string>("-f", "--format") { Description = "dot or mermaid", DefaultValueFactory = _ => "dot" };
        format.AcceptOnlyFromAmong("dot", "mermaid");
        var command = new Command("graph", "the controller's state machines (StateMachines/) as Graphviz DOT or Mermaid") { machine, format };
        command.SetAction(r =>
        {
            string which = r.GetValue(machine)!;
            bool mermaid = r.GetValue(format) == "mermaid";
            foreach (var g in StateMachineGraphs.All().Where(g => which == "all" || g.Name == which))
                Console.Out.Write((mermaid ? Stateless.Graph.MermaidGraph.Format(g.Info) : StateMachineGraphs.Dot(g)).TrimEnd() + "\n");
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Spawn()
    {
        var domId = DomId();
        var devId = DevId();
        var args = new Option<string>("-a", "--args") { Description = "params, type:path (aio:/x.img, vhd:/x.vhd, ram:…)", Required = true };
        var mode = new Option<string>("-m", "--mode") { Description = "w (read-write) or r (read-only)", DefaultValueFactory = _ => "w" };
        mode.AcceptOnlyFromAmong("w", "r");
        var timeout = Timeout(30);
        var command = new Command("spawn", "for testing by hand: register a VBD as the toolstack does (frontend, params, mode, tapdisk-request=start) and wait until it runs")
            { domId, devId, args, mode, timeout };
        command.SetAction(async (r, ct) =>
        {
            string p = r.GetValue(args)!;
            if (!p.Contains(':', StringComparison.Ordinal))
                throw new TapCtlException(ExitCodes.Usage, $"-a: '{p}' is not type:path");
            using var controller = await ConnectAsync(r, ct).ConfigureAwait(false);
            await using var toolstack = await Toolstack.ConnectAsync(controller, r.GetValue(XenStorePath), ct).ConfigureAwait(false);
            var c = await toolstack.SpawnAsync(r.GetValue(domId), r.GetValue(devId), p, r.GetValue(mode)!, Seconds(r, timeout), ct).ConfigureAwait(false);
            Console.Out.Write(string.Create(CultureInfo.InvariantCulture, $"pid {c.Pid} minor {c.Minor} cookie {c.Cookie} nbd {(c.NbdSocket.Length == 0 ? "-" : c.NbdSocket)}\n"));
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Close()
    {
        var domId = DomId();
        var devId = DevId();
        var force = new Option<bool>("-f", "--force") { Description = "shutdown-force instead of shutdown-normal" };
        var keep = new Option<bool>("--keep-backend") { Description = "leave the backend node in XenStore" };
        var timeout = Timeout(30);
        var command = new Command("close", "for testing by hand: tapdisk-request=shutdown-normal (-f: force), wait until closed, remove the backend node")
            { domId, devId, force, keep, timeout };
        command.SetAction(async (r, ct) =>
        {
            using var controller = await ConnectAsync(r, ct).ConfigureAwait(false);
            await using var toolstack = await Toolstack.ConnectAsync(controller, r.GetValue(XenStorePath), ct).ConfigureAwait(false);
            await toolstack.CloseAsync(r.GetValue(domId), r.GetValue(devId), r.GetValue(force), r.GetValue(keep), Seconds(r, timeout), ct).ConfigureAwait(false);
            return ExitCodes.Success;
        });
        return command;
    }
}
