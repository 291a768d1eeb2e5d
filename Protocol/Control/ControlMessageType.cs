namespace BlkTapCtrl.Protocol.Control;

/// <summary>Message types of the supervisor ⇄ tapdisk control protocol (reference §2).</summary>
public enum ControlMessageType : ushort
{
    Error = 1,
    RuntimeError = 2,
    Pid = 3,
    PidResponse = 4,
    Open = 5,
    OpenResponse = 6,
    Pause = 7,
    PauseResponse = 8,
    Resume = 9,
    ResumeResponse = 10,
    Close = 11,
    CloseResponse = 12,
    ForceShutdown = 13,
    Exit = 14,
}

public static class ControlMessageTypeNames
{
    /// <summary>The log name the original prints for a message type ("unknown" for anything else).</summary>
    public static string LogName(ControlMessageType type) => type switch
    {
        ControlMessageType.Error => "error",
        ControlMessageType.RuntimeError => "runtime error",
        ControlMessageType.Pid => "pid",
        ControlMessageType.PidResponse => "pid response",
        ControlMessageType.Open => "open",
        ControlMessageType.OpenResponse => "open response",
        ControlMessageType.Pause => "pause",
        ControlMessageType.PauseResponse => "pause response",
        ControlMessageType.Resume => "resume",
        ControlMessageType.ResumeResponse => "resume response",
        ControlMessageType.Close => "close",
        ControlMessageType.ForceShutdown => "force shutdown",
        ControlMessageType.CloseResponse => "close response",
        ControlMessageType.Exit => "exit",
        _ => "unknown",
    };
}
