namespace BlkTapCtrl.Worker.Scheduling;

/// <summary>One registered event (reference §3.2). Allocated at registration, never per wake-up.</summary>
internal sealed class LoopEvent
{
    public int Id;
    public EventMode Mode;
    public int Fd;
    public long TimeoutMicroseconds;
    public long Deadline;
    public EventCallback Callback = null!;
    public object? State;
    /// <summary>Unregistered: never called again, freed after the outermost pass.</summary>
    public bool Dead;
    public bool Masked;
    public EventMode Pending;

    public bool WantsFd => (Mode & (EventMode.Read | EventMode.Write | EventMode.Except)) != 0;
}
