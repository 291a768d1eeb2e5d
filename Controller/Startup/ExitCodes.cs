namespace BlkTapCtrl.Controller.Startup;

/// <summary>The daemon's exit statuses (CA-26523).</summary>
public static class ExitCodes
{
    /// <summary>Clean stop (SIGTERM closed every VBD), help, or another instance already holds the pid file.</summary>
    public const int Success = 0;
    /// <summary>A fatal start-up error (XenStore unreachable, pid file or run directory unusable).</summary>
    public const int StartupFailure = 1;
    /// <summary>Bad usage (EINVAL).</summary>
    public const int Usage = 22;
}
