// blktap-bench <benchmark> [options]: one subcommand per benchmark file (docs/ARCHITECTURE.md, bench/).
using BlkTapCtrl.Bench;

return args.FirstOrDefault() switch
{
    "diagnostics" => DiagnosticsBench.Run(args[1..]),
    "nbd" => NbdBench.Run(args[1..]),
    "controller" => await ControllerBench.RunAsync(args[1..]),
    "xenstore" => XenStoreBench.Run(args[1..]),
    "vhd" => VhdBench.Run(args[1..]),
    "worker" => await WorkerBench.RunAsync(args[1..]),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: blktap-bench <benchmark> [options]; benchmarks: diagnostics, nbd, controller, xenstore, vhd, worker");
    return 22; // EINVAL
}
