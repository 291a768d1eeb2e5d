using BlkTapCtrl.Testing;

namespace BlkTapCtrl.Vhd.Tests.Support;

/// <summary>Copies (and gunzips) the golden images into a test's own directory.</summary>
public static class GoldenImages
{
    public static readonly string[] Names = ["empty-16m", "fixed-4m", "prealloc-8m-s64", "base", "mid", "leaf"];

    public static string Dir => GoldenVhd.Dir;

    public static string Unpack(TempDir dir) => GoldenVhd.Unpack(dir);

    public static string Expected(string image) => GoldenVhd.Expected(image);

    public static Dictionary<string, string> ContentHashes() =>
        File.ReadAllLines(Path.Combine(Dir, "expected", "content.sha256"))
            .Where(l => l.Length > 0)
            .Select(l => l.Split("  "))
            .ToDictionary(p => p[1].Replace(".content", ""), p => p[0]);
}
