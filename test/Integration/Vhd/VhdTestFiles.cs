using BlkTapCtrl.Testing;

namespace BlkTapCtrl.Integration.Tests.Vhd;

/// <summary>Golden images, the vhd-util executable and a raw-model helper for the VHD integration tests.</summary>
public static class VhdTestFiles
{
    public static string GoldenDir => GoldenVhd.Dir;

    public static void Unpack(TempDir dir) => GoldenVhd.Unpack(dir);

    public static string Expected(string image) => GoldenVhd.Expected(image);

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
