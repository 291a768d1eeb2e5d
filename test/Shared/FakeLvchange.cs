namespace BlkTapCtrl.Testing;

/// <summary>
/// A real <c>lvchange</c> stand-in: an executable shell script in a test's directory that appends its
/// arguments to <see cref="CallLog"/> and, per volume (by file name), counts its calls and can be told to
/// fail the n-th call (<see cref="FailCall"/>) or to swap another file in as the volume on the n-th call
/// (<see cref="SwapOnCall"/>) — what an LV resize or reparent on the pool master looks like from here.
/// </summary>
public sealed class FakeLvchange
{
    public FakeLvchange(string directory)
    {
        StateDirectory = Path.Combine(directory, "lvchange-state");
        Directory.CreateDirectory(StateDirectory);
        Executable = Path.Combine(directory, "lvchange");
        CallLog = Path.Combine(StateDirectory, "calls.log");
        File.WriteAllText(Executable, $$"""
            #!/bin/sh
            # fake lvchange written by a test: log, count, maybe fail, maybe swap the volume
            state='{{StateDirectory}}'
            echo "$*" >> "$state/calls.log"
            for vol; do :; done
            name=$(basename "$vol")
            n=$(( $(cat "$state/$name.count" 2>/dev/null || echo 0) + 1 ))
            echo "$n" > "$state/$name.count"
            if [ -e "$state/$name.fail.$n" ]; then
              echo "  Failed to activate $vol (fake failure $n)" >&2
              exit 5
            fi
            if [ -e "$state/$name.swap.$n" ]; then
              mv "$state/$name.swap.$n" "$vol"
            fi
            exit 0
            """.Replace("\r\n", "\n"));
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(Executable, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    public string Executable { get; }
    public string StateDirectory { get; }
    public string CallLog { get; }

    /// <summary>Each call's argument line, in order.</summary>
    public IReadOnlyList<string> Calls => File.Exists(CallLog) ? File.ReadAllLines(CallLog) : [];

    /// <summary>The <paramref name="call"/>-th activation (from 1) of the volume named <paramref name="volumeName"/> exits 5.</summary>
    public void FailCall(string volumeName, int call) => File.WriteAllText(Path.Combine(StateDirectory, $"{volumeName}.fail.{call}"), "");

    /// <summary>The <paramref name="call"/>-th activation of <paramref name="volumeName"/> first moves <paramref name="replacement"/> over the volume.</summary>
    public void SwapOnCall(string volumeName, int call, string replacement) =>
        File.Move(replacement, Path.Combine(StateDirectory, $"{volumeName}.swap.{call}"));

    /// <summary>Forgets the call counts (and pending failures/swaps stay as they are).</summary>
    public void ResetCounts()
    {
        foreach (var f in Directory.GetFiles(StateDirectory, "*.count")) File.Delete(f);
    }
}
