namespace BlkTapCtrl.Worker.Standalone;

/// <summary>
/// <c>tapdisk serve …</c> dispatch. The NBD frontend work supplies the implementation of
/// <see cref="Serve"/> in its own file (calling <c>ServeCommand</c>); until then the partial method
/// is empty and <c>serve</c> reports that it is not built in.
/// </summary>
internal static partial class StandaloneDispatch
{
    static partial void Serve(string[] args, ref int? exitCode);

    public static int? TryServe(string[] args)
    {
        int? exitCode = null;
        Serve(args, ref exitCode);
        return exitCode;
    }
}
