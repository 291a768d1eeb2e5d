using System.ComponentModel;
using BlkTapCtrl.Worker.Interop;

namespace BlkTapCtrl.Worker.Lvm;

/// <summary>Runs <c>lvchange -ay --refresh &lt;volume&gt;</c> (reference §3.9), the way the original's system() did: synchronously.</summary>
public sealed class Lvchange(LvmOptions options)
{
    /// <summary>The arguments before the volume name.</summary>
    public static readonly string[] ActivateArguments = ["-ay", "--refresh"];

    /// <summary>Activates and refreshes <paramref name="volume"/>. Returns 0, or −EIO with <paramref name="why"/>.</summary>
    public int Activate(string volume, out string why)
    {
        why = "";
        var psi = new System.Diagnostics.ProcessStartInfo(options.Lvchange)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        foreach (var a in ActivateArguments) psi.ArgumentList.Add(a);
        psi.ArgumentList.Add(volume);
        System.Diagnostics.Process process;
        try
        {
            process = System.Diagnostics.Process.Start(psi) ?? throw new Win32Exception("no process");
        }
        catch (Win32Exception e)
        {
            why = $"cannot run {options.Lvchange}: {e.Message}";
            return -Errno.ENOENT;
        }
        using (process)
        {
            process.StandardInput.Close();
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(options.CommandTimeout))
            {
                try { process.Kill(entireProcessTree: true); }
                catch (InvalidOperationException) { }
                why = $"{options.Lvchange} {string.Join(' ', ActivateArguments)} {volume} did not finish within {options.CommandTimeout.TotalSeconds:0} s";
                return -Errno.EIO;
            }
            process.WaitForExit();
            if (process.ExitCode == 0) return 0;
            string output = (stderr.Result + stdout.Result).Trim();
            why = $"{options.Lvchange} {string.Join(' ', ActivateArguments)} {volume} exited with {process.ExitCode}" +
                  (output.Length > 0 ? $": {output}" : "");
            return -Errno.EIO;
        }
    }
}
