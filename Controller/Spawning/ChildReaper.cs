using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using BlkTapCtrl.Controller.Native;

namespace BlkTapCtrl.Controller.Spawning;

/// <summary>How a worker ended: exit status, or the signal that killed it.</summary>
public readonly record struct ChildExit(int Pid, int? ExitStatus, int? Signal)
{
    public bool IsClean => ExitStatus == 0;
    public override string ToString() => Signal is { } s ? $"killed by signal {s}" : $"exited with status {ExitStatus}";
}

/// <summary>
/// Reaps the workers we spawned (CA-26523: no detaching, every exit noticed). On SIGCHLD it waits
/// (WNOHANG) for each pid it tracks — never for pids it does not know, which belong to the runtime —
/// and reports exits (status or signal); stopped children are not exits.
/// </summary>
public sealed class ChildReaper : IDisposable
{
    private readonly ConcurrentDictionary<int, byte> _tracked = new();
    private readonly Action<ChildExit> _onExit;
    private readonly PosixSignalRegistration _registration;
    private readonly object _reapLock = new();
    private readonly OrphanWatcher _orphans;

    public ChildReaper(Action<ChildExit> onExit)
    {
        _onExit = onExit;
        _orphans = new OrphanWatcher(pid => _onExit(new ChildExit(pid, null, null)));
        _registration = PosixSignalRegistration.Create(PosixSignal.SIGCHLD, _ => ReapAll());
    }

    /// <summary>Workers still running: our children and the orphans taken back after a restart.</summary>
    public int TrackedCount => _tracked.Count + _orphans.Count;

    public IReadOnlyList<int> TrackedPids => [.. _tracked.Keys, .. _orphans.Pids];

    /// <summary>
    /// Watches a worker an earlier controller spawned (not our child: waitpid cannot reap it). Its exit is
    /// reported with an unknown status. False when the process is already gone.
    /// </summary>
    public bool TrackOrphan(int pid) => _orphans.Watch(pid);

    /// <summary>Starts watching a freshly spawned pid (reaps at once in case it already died).</summary>
    public void Track(int pid)
    {
        _tracked[pid] = 0;
        ReapAll();
    }

    public bool IsAlive(int pid) => _tracked.ContainsKey(pid) || _orphans.Contains(pid);

    public void ReapAll()
    {
        lock (_reapLock)
        {
            foreach (var pid in _tracked.Keys)
            {
                int rc = Libc.waitpid(pid, out int status, Libc.WNOHANG);
                if (rc == 0) continue;
                if (rc < 0)
                {
                    if (Marshal.GetLastPInvokeError() == Libc.ECHILD && _tracked.TryRemove(pid, out _))
                        _onExit(new ChildExit(pid, null, null)); // reaped elsewhere: status unknown
                    continue;
                }
                if (Libc.WIFEXITED(status))
                {
                    _tracked.TryRemove(pid, out _);
                    _onExit(new ChildExit(pid, Libc.WEXITSTATUS(status), null));
                }
                else if (Libc.WIFSIGNALED(status))
                {
                    _tracked.TryRemove(pid, out _);
                    _onExit(new ChildExit(pid, null, Libc.WTERMSIG(status)));
                }
            }
        }
    }

    /// <summary>Sends a signal to a tracked worker (false when it is already gone).</summary>
    public bool Signal(int pid, int signal) => IsAlive(pid) && Libc.kill(pid, signal) == 0;

    public void Dispose()
    {
        _registration.Dispose();
        _orphans.Dispose();
    }
}
