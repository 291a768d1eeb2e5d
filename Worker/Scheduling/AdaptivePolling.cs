namespace BlkTapCtrl.Worker.Scheduling;

/// <summary>
/// How long the loop spins on a non-blocking epoll_wait before it sleeps in a blocking one. When a
/// client keeps requests coming, the next one usually arrives within microseconds of the loop running
/// out of work; sleeping then costs a context switch here and, worse, a wake-up on the client's side of
/// every send (a client such as fio at QD32 is then the bottleneck, paying for our sleeps). qemu's event
/// loop polls for the same reason. The window adapts as qemu's does: it grows while events keep arriving
/// soon after the loop would have slept, and collapses to zero once waits are longer than the maximum,
/// so an idle or lightly used worker never spins (issue 7: an idle tapdisk uses no CPU).
/// </summary>
public sealed class AdaptivePolling
{
    /// <summary>Default maximum window: a few request round trips on a unix socket or the ring.</summary>
    public const long DefaultMaxMicroseconds = 50;
    private const long GrowStartMicroseconds = 4;

    public AdaptivePolling(long maxMicroseconds = DefaultMaxMicroseconds) =>
        MaxMicroseconds = Math.Max(0, maxMicroseconds);

    /// <summary>0 turns polling off.</summary>
    public long MaxMicroseconds { get; }

    /// <summary>How long the next wait spins before blocking.</summary>
    public long WindowMicroseconds { get; private set; }

    /// <summary>
    /// After a wait: <paramref name="waitedMicroseconds"/> from the start of the wait until an event (or
    /// the timeout), <paramref name="foundWhilePolling"/> when the spin itself caught it.
    /// </summary>
    public void Update(long waitedMicroseconds, bool foundWhilePolling)
    {
        if (MaxMicroseconds == 0 || foundWhilePolling) return;
        if (waitedMicroseconds > MaxMicroseconds)
            WindowMicroseconds = 0; // a real idle gap: spinning would only have burnt CPU
        else if (waitedMicroseconds > WindowMicroseconds)
            WindowMicroseconds = WindowMicroseconds == 0
                ? GrowStartMicroseconds
                : Math.Min(MaxMicroseconds, WindowMicroseconds * 2); // a slightly longer spin would have caught it
    }
}
