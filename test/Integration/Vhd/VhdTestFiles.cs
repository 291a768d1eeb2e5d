using System.IO.Compression;
using BlkTapCtrl.Testing;

namespace BlkTapCtrl.Integration.Tests.Vhd;

/// <summary>Golden images, the vhd-util executable and a raw-model helper for the VHD integration tests.</summary>
public static class VhdTestFiles
{
    public static string GoldenDir { get; } = FindGolden();

    private static string FindGolden()
    {
        if (Directory.Exists(RepoPaths.GoldenVhdDir))
            return RepoPaths.GoldenVhdDir;
        for (var d = new DirectoryInfo(RepoPaths.Root); d != null; d = d.Parent)
        {
            var candidate = Path.Combine(d.FullName, "shared", "testdata", "vhd-golden");
            if (Directory.Exists(candidate))
                return candidate;
        }
        return RepoPaths.GoldenVhdDir;
    }

    public static void Unpack(TempDir dir)
    {
        foreach (var file in Directory.GetFiles(GoldenDir))
        {
            var name = Path.GetFileName(file);
            if (name.EndsWith(".vhd.gz", StringComparison.Ordinal))
            {
                using var input = new GZipStream(File.OpenRead(file), CompressionMode.Decompress);
                using var output = File.Create(dir[name[..^3]]);
                input.CopyTo(output);
            }
            else if (name.EndsWith(".vhd", StringComparison.Ordinal))
            {
                File.Copy(file, dir[name]);
                File.SetAttributes(dir[name], FileAttributes.Normal);
            }
        }
    }

    public static string Expected(string image) => File.ReadAllText(Path.Combine(GoldenDir, "expected", image + ".txt"));

    public static Task<(int Code, string Out, string Err)> VhdUtil(string cwd, params string[] args) =>
        ChildProcess.RunAsync(RepoPaths.Executable("vhd-util"), args, workingDirectory: cwd, timeout: TimeSpan.FromSeconds(60));

    public static Task<(int Code, string Out, string Err)> Run(string tool, string cwd, params string[] args) =>
        ChildProcess.RunAsync(tool, args, workingDirectory: cwd, timeout: TimeSpan.FromSeconds(60));

    public static bool HasTool(string tool) =>
        Environment.GetEnvironmentVariable("PATH")!.Split(':').Any(p => File.Exists(Path.Combine(p, tool)));

    public static void RequireTool(string tool)
    {
        if (!HasTool(tool))
            Assert.Fail($"{tool} is not installed (scripts/install-deps installs it)");
    }
}
