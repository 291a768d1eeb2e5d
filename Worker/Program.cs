using BlkTapCtrl.Worker.Process;
using BlkTapCtrl.Worker.Standalone;

// tapdisk: one worker per VBD (reference §3.1). "tapdisk serve …" is the standalone mode without
// control FIFOs (an NBD export); everything else is the supervisor's command line.
if (args.Length > 0 && args[0] == "serve")
{
    int? code = StandaloneDispatch.TryServe(args[1..]);
    if (code is int exit) return exit;
    Console.Error.WriteLine("tapdisk: 'serve' is not built into this tapdisk");
    return 38; // ENOSYS
}
return TapdiskProcess.Run(args);
