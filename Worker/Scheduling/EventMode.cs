namespace BlkTapCtrl.Worker.Scheduling;

/// <summary>What an event waits for (reference §3.2): fd readiness and/or a timeout.</summary>
[Flags]
public enum EventMode
{
    None = 0,
    Read = 1,
    Write = 2,
    Except = 4,
    Timeout = 8,
}

/// <summary>Called on the loop thread with the modes that became ready.</summary>
public delegate void EventCallback(int id, EventMode ready, object? state);
