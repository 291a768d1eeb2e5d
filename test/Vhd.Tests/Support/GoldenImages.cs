using System.IO.Compression;
using BlkTapCtrl.Testing;

namespace BlkTapCtrl.Vhd.Tests.Support;

/// <summary>Copies (and gunzips) the golden images into a test's own directory.</summary>
public static class GoldenImages
{
    public static readonly string[] Names = ["empty-16m", "fixed-4m", "prealloc-8m-s64", "base", "mid", "leaf"];

    /// <summary>
    /// The golden folder: beside the clone (RepoPaths), or above it for clones in nested worktrees.
    /// </summary>
    public static string Dir { get; } = FindDir();

    private static string FindDir()
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

    public static string Unpack(TempDir dir)
    {
        foreach (var file in Directory.GetFiles(Dir))
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
        return dir.Path;
    }

    public static string Expected(string image) =>
        File.ReadAllText(Path.Combine(Dir, "expected", image + ".txt"));

    public static Dictionary<string, string> ContentHashes() =>
        File.ReadAllLines(Path.Combine(Dir, "expected", "content.sha256"))
            .Where(l => l.Length > 0)
            .Select(l => l.Split("  "))
            .ToDictionary(p => p[1].Replace(".content", ""), p => p[0]);
}
