using BlkTapCtrl.Tools.VhdUtil.Cli;
using BlkTapCtrl.Tools.VhdUtil.Commands;

// vhd-util COMMAND [OPTIONS]: blktap's VHD tool. Commands return a negative errno (0 = success) and
// the process exits with its absolute value, as the original did. "--debug" may appear anywhere.
var arguments = args.Where(a => a != "--debug").ToList();
bool debug = arguments.Count != args.Length;

var commands = new (string Name, Func<IReadOnlyList<string>, int> Run)[]
{
    ("create", CreateCommand.Run),
    ("snapshot", SnapshotCommand.Run),
    ("query", QueryCommand.Run),
    ("read", ReadCommand.Run),
    ("set", SetCommand.Run),
    ("repair", RepairCommand.Run),
    ("resize", ResizeCommand.Run),
    ("fill", FillCommand.Run),
    ("coalesce", CoalesceCommand.Run),
    ("modify", ModifyCommand.Run),
    ("scan", ScanCommand.Run),
    ("check", CheckCommand.Run),
    ("revert", RevertCommand.Run),
};

int Help()
{
    Output.Line("usage: vhd-util COMMAND [OPTIONS]");
    Output.Line("COMMAND := { " + string.Join(" | ", commands.Select(c => c.Name)) + " }");
    Output.Flush();
    return 0;
}

if (arguments.Count == 0)
    return Help();
var command = commands.FirstOrDefault(c => c.Name == arguments[0]);
if (command.Run == null)
{
    Output.Line($"invalid COMMAND {arguments[0]}");
    return Help();
}

int result;
try
{
    result = command.Run(arguments.Skip(1).ToList());
}
catch (Exception e) when (e is BlkTapCtrl.Vhd.VhdFormatException or IOException or UnauthorizedAccessException)
{
    result = Errors.From(e);
    if (debug)
        Console.Error.WriteLine(e);
}
Output.Flush();
return Math.Abs(result) & 0xff;
