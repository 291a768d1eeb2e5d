using BlkTapCtrl.Testing;

namespace BlkTapCtrl.Integration.Tests.Vhd;

/// <summary>
/// vhd-util as a process against the images blktap's own vhd-util wrote: the same command lines print
/// byte-identical output (expected/&lt;image&gt;.txt, "&lt;dir&gt;" = the images' directory).
/// </summary>
public class VhdUtilGoldenOutputTests
{
    [TestCase("empty-16m")]
    [TestCase("fixed-4m")]
    [TestCase("prealloc-8m-s64")]
    [TestCase("base")]
    [TestCase("mid")]
    [TestCase("leaf")]
    public async Task Output_matches_the_original_vhd_util(string image)
    {
        using var dir = new TempDir("vhdgo");
        VhdTestFiles.Unpack(dir);
        var canonical = new DirectoryInfo(dir.Path).ResolveLinkTarget(true)?.FullName ?? dir.Path;
        var expected = VhdTestFiles.Expected(image);
        var actual = new System.Text.StringBuilder();
        foreach (var line in expected.Split('\n').Where(l => l.StartsWith("$ vhd-util ", StringComparison.Ordinal)))
        {
            var args = line["$ vhd-util ".Length..].Split(' ');
            var (code, stdout, _) = await VhdTestFiles.VhdUtil(dir.Path, args);
            actual.Append(line).Append('\n').Append(stdout.Replace(canonical, "<dir>"));
            // The original exits with |errno|: 22 for "read -p" on a fixed disk (no BAT), else 0.
            Assert.That(code, Is.EqualTo(image == "fixed-4m" && args[0] == "read" ? 22 : 0), line);
        }
        Assert.That(actual.ToString(), Is.EqualTo(expected));
    }
}
