namespace BlkTapCtrl.Worker.Vbd;

/// <summary>VBD state bits (reference §3.5).</summary>
[Flags]
public enum VbdFlags
{
    None = 0,
    Dead = 0x1,
    Closed = 0x2,
    QuiesceRequested = 0x4,
    Quiesced = 0x8,
    PauseRequested = 0x10,
    Paused = 0x20,
    ShutdownRequested = 0x40,
    Locking = 0x80,
    RetryNeeded = 0x100,
    LogDropped = 0x200,
}
