namespace BlkTapCtrl.Worker.Standalone;

internal static partial class StandaloneDispatch
{
    static partial void Serve(string[] args, ref int? exitCode) => exitCode = ServeCommand.Run(args);
}
