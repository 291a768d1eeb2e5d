using System.Runtime.CompilerServices;

namespace BlkTapCtrl.Testing;

/// <summary>Locates the repository, the shared design folder and the built executables from a test.</summary>
public static class RepoPaths
{
    public static string Root { get; } = FindRoot();

    /// <summary>The CEO's shared folder (design reference, golden test data), beside the clone.</summary>
    public static string Shared { get; } = FindShared();

    public static string GoldenVhdDir => Path.Combine(Shared, "testdata", "vhd-golden");

#if DEBUG
    private const string Configuration = "debug";
#else
    private const string Configuration = "release";
#endif

    /// <summary>
    /// Full path of a built executable by its dom0 name (tapdisk, blktapctrl, tap-ctl, vhd-util, xenstored),
    /// from the artifacts folder of the same configuration as the tests. Fails the test when it is not built.
    /// </summary>
    public static string Executable(string name)
    {
        var bin = Path.Combine(Root, "artifacts", "bin");
        if (Directory.Exists(bin))
        {
            // Projects that reference an executable (test projects, the bench) get a copy of its apphost; take
            // the newest so a stale copy from an older build never shadows the freshly built executable.
            var newest = Directory.EnumerateDirectories(bin)
                .Select(project => Path.Combine(project, Configuration, name))
                .Where(File.Exists)
                .OrderByDescending(File.GetLastWriteTimeUtc)
                .FirstOrDefault();
            if (newest != null)
                return newest;
        }
        Assert.Fail($"executable '{name}' is not built under {bin}/*/{Configuration}; build BlkTapCtrl.sln first");
        return "";
    }

    // CI lays shared/ beside the clone; a worktree nested deeper finds it further up.
    private static string FindShared()
    {
        for (var dir = new DirectoryInfo(Root).Parent; dir != null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared");
            if (Directory.Exists(Path.Combine(candidate, "design")))
                return candidate;
        }
        return Path.GetFullPath(Path.Combine(Root, "..", "shared"));
    }

    private static string FindRoot([CallerFilePath] string source = "")
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Path.GetDirectoryName(source) ?? "" })
        {
            for (var dir = new DirectoryInfo(start); dir != null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "BlkTapCtrl.sln")))
                    return dir.FullName;
            }
        }
        throw new InvalidOperationException("BlkTapCtrl.sln not found above " + AppContext.BaseDirectory);
    }
}
