using System.Runtime.InteropServices;
using System.Text;
using BlkTapCtrl.Controller.Native;

namespace BlkTapCtrl.Controller.Spawning;

/// <summary>
/// Starts a worker (reference §1.5 step 4): <c>$TAPDISK</c> if set (CA-26523), else the configured program,
/// searched on PATH, with argv <c>tapdisk -l&lt;facility name&gt; [--syslog-socket PATH] &lt;tapctrlwrite&gt; &lt;tapctrlread&gt;</c>. The child is ours
/// (not detached): it inherits only fds 0–2, default signal dispositions and an empty signal mask, and
/// the reaper maps its exit back to the channel.
/// </summary>
public sealed unsafe class TapdiskLauncher(string configuredProgram, int syslogFacility, Func<string, string?> environment,
    string syslogSocket = Diagnostics.Syslog.SyslogClientOptions.DefaultSocketPath)
{
    public const string OverrideVariable = "TAPDISK";

    /// <summary>The program that will be executed now (the environment override is re-read each time).</summary>
    public string Program => environment(OverrideVariable) is { Length: > 0 } over ? over : configuredProgram;

    /// <summary>Spawns the worker; throws <see cref="IOException"/> with the errno text when exec fails.</summary>
    public int Spawn(ControlFifos fifos)
    {
        string program = Program;
        // The facility goes by name: our tapdisk's -l takes syslog names (daemon, local0, …), not numbers.
        // A syslog socket other than /dev/log is passed on, so the workers log where the daemon does; otherwise
        // argv stays the original's.
        string[] argv = syslogSocket == Diagnostics.Syslog.SyslogClientOptions.DefaultSocketPath
            ? ["tapdisk", "-l" + Startup.SyslogFacility.NameOf(syslogFacility), fifos.WritePath, fifos.ReadPath]
            : ["tapdisk", "-l" + Startup.SyslogFacility.NameOf(syslogFacility), Diagnostics.Syslog.SyslogClientOptions.CommandLineOption, syslogSocket,
                fifos.WritePath, fifos.ReadPath];
        var env = Environment.GetEnvironmentVariables();
        var envp = new List<string>(env.Count);
        foreach (System.Collections.DictionaryEntry e in env)
            envp.Add($"{e.Key}={e.Value}");

        var allocations = new List<nint>();
        byte* Utf8(string s)
        {
            var bytes = Encoding.UTF8.GetBytes(s + "\0");
            nint p = Marshal.AllocHGlobal(bytes.Length);
            Marshal.Copy(bytes, 0, p, bytes.Length);
            allocations.Add(p);
            return (byte*)p;
        }
        byte** Vector(IReadOnlyList<string> items)
        {
            nint p = Marshal.AllocHGlobal((items.Count + 1) * sizeof(nint));
            allocations.Add(p);
            var v = (byte**)p;
            for (int i = 0; i < items.Count; i++) v[i] = Utf8(items[i]);
            v[items.Count] = null;
            return v;
        }

        // glibc's posix_spawnattr_t is 336 bytes, file actions 80, sigset_t 128: generous buffers.
        byte* attr = stackalloc byte[1024];
        byte* actions = stackalloc byte[512];
        byte* sigset = stackalloc byte[256];
        Libc.posix_spawnattr_init(attr);
        Libc.posix_spawn_file_actions_init(actions);
        try
        {
            Libc.sigemptyset(sigset);
            Libc.posix_spawnattr_setsigmask(attr, sigset);
            Libc.sigfillset(sigset);
            Libc.posix_spawnattr_setsigdefault(attr, sigset);
            Libc.posix_spawnattr_setflags(attr, (short)(Libc.POSIX_SPAWN_SETSIGMASK | Libc.POSIX_SPAWN_SETSIGDEF));
            // The child keeps 0–2 only: no pid-file lock, no FIFO of another VBD, no XenStore socket.
            Libc.posix_spawn_file_actions_addclosefrom_np(actions, 3);
            int rc = Libc.posix_spawnp(out int pid, Utf8(program), actions, attr, Vector(argv), Vector(envp));
            if (rc != 0)
                throw new IOException($"exec {program}: {Libc.ErrorText(rc)}");
            return pid;
        }
        finally
        {
            Libc.posix_spawn_file_actions_destroy(actions);
            Libc.posix_spawnattr_destroy(attr);
            foreach (var p in allocations) Marshal.FreeHGlobal(p);
        }
    }
}
