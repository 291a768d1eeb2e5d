namespace BlkTapCtrl.Tools.TapCtl;

/// <summary>A failure to report to the operator as <c>tap-ctl: message</c> with its exit code.</summary>
public sealed class TapCtlException(int exitCode, string message) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}

/// <summary>tap-ctl's exit codes.</summary>
public static class ExitCodes
{
    public const int Success = 0;
    /// <summary>The operation failed (the controller refused it, a wait timed out, the VBD does not exist).</summary>
    public const int Failed = 1;
    /// <summary>Bad command line (System.CommandLine's parse errors use it too).</summary>
    public const int Usage = 2;
    /// <summary>The controller is not running or its control socket cannot be reached.</summary>
    public const int ControllerUnreachable = 3;
}
