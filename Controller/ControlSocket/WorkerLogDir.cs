namespace BlkTapCtrl.Controller.ControlSocket;

/// <summary>
/// Where the controller's workers write their log and stats snapshot: <c>$TAPDISK_LOG_DIR</c> when set (the
/// worker reads it, and <c>blktapctrl</c> sets it to its <c>--log-dir</c> at start-up so both agree), else the
/// controller's log directory.
/// </summary>
public static class WorkerLogDir
{
    public const string Variable = "TAPDISK_LOG_DIR";

    public static string Resolve(string controllerLogDir) =>
        Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } d ? d : controllerLogDir;

    /// <summary>Hands the controller's log directory down to every worker it spawns (unless the operator chose one).</summary>
    public static void ExportForWorkers(string controllerLogDir)
    {
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable(Variable)))
            Environment.SetEnvironmentVariable(Variable, controllerLogDir);
    }
}
