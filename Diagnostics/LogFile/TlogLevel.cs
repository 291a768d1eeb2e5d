namespace BlkTapCtrl.Diagnostics.LogFile;

/// <summary>tapdisk log levels (§3.8): a line is written when its level ≤ the configured level.</summary>
public enum TlogLevel
{
    Warn = 0,
    Info = 1,
    Debug = 2,
}
