using System.IO.Compression;

namespace BlkTapCtrl.Testing;

/// <summary>The golden VHDs written by blktap's own vhd-util, copied (and gunzipped) into a test's directory.</summary>
public static class GoldenVhd
{
    public static string Dir => RepoPaths.GoldenVhdDir;

    /// <summary>Unpacks every golden image into <paramref name="dir"/> (chains stay together: locators are relative).</summary>
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

    /// <summary>The original vhd-util's output for <paramref name="image"/> (expected/&lt;image&gt;.txt).</summary>
    public static string Expected(string image) => File.ReadAllText(Path.Combine(Dir, "expected", image + ".txt"));
}
