using BlkTapCtrl.Controller.Startup;
using BlkTapCtrl.Testing;

namespace BlkTapCtrl.Controller.Tests;

public class PidFileLockTests
{
    [Test]
    public void Lock_is_exclusive_and_the_file_holds_our_pid()
    {
        using var dir = new TempDir();
        var path = dir["sub/blktapctrl.pid"];
        Assert.That(PidFileLock.TryAcquire(path, out var first, out _), Is.EqualTo(PidFileLock.Outcome.Acquired));
        using (first)
        {
            Assert.That(PidFileLock.ReadContent(path), Is.EqualTo($"{Environment.ProcessId}\n"));
            Assert.That(File.GetUnixFileMode(path), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
            Assert.That(PidFileLock.TryAcquire(path, out var second, out var why), Is.EqualTo(PidFileLock.Outcome.HeldByAnother));
            Assert.That(second, Is.Null);
            Assert.That(why, Does.Contain("locked by another blktapctrl").And.Contain(Environment.ProcessId.ToString()));
        }
        Assert.That(File.Exists(path), Is.False, "removed on a clean stop");
        Assert.That(PidFileLock.TryAcquire(path, out var third, out _), Is.EqualTo(PidFileLock.Outcome.Acquired));
        third!.Dispose();
    }

    [Test]
    public void Unwritable_location_fails_with_the_reason()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["file"], "");
        Assert.That(PidFileLock.TryAcquire(dir["file"] + "/x.pid", out _, out var why), Is.EqualTo(PidFileLock.Outcome.Failed));
        Assert.That(why, Is.Not.Null);
    }
}
