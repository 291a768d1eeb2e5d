using System.CommandLine;
using BlkTapCtrl.Tools.TapCtl;
using BlkTapCtrl.Tools.TapCtl.Commands;

// tap-ctl: the operators' tool. Reads the controller through its control socket; steers VBDs through XenStore
// exactly as the toolstack does. Exit codes: 0 ok, 1 operation failed, 2 usage, 3 controller not reachable.
var root = new RootCommand("tap-ctl: inspect and steer blktapctrl's VBDs");
TapCtlCommands.AddTo(root);
var parsed = root.Parse(args);
if (parsed.Errors.Count > 0)
{
    foreach (var e in parsed.Errors)
        Console.Error.WriteLine($"tap-ctl: {e.Message}");
    Console.Error.WriteLine("try 'tap-ctl --help'");
    return ExitCodes.Usage;
}
try
{
    return await parsed.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (TapCtlException e)
{
    Console.Error.WriteLine($"tap-ctl: {e.Message}");
    return e.ExitCode;
}
