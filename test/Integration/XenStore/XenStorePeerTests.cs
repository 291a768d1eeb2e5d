using BlkTapCtrl.Testing;
using BlkTapCtrl.XenStore.Client;

namespace BlkTapCtrl.Integration.Tests.XenStore;

/// <summary>Debian's xenstore-utils and Xen's test-xenstore (libxenstore clients) against our xenstored process.</summary>
public class XenStorePeerTests
{
    private const string TestXenstore = "/usr/lib/xen-4.17/bin/test-xenstore";

    [Test]
    public async Task Xenstore_utils_commands_work_against_our_daemon()
    {
        using var dir = new TempDir("xsp");
        using var xs = await XenStoredProcess.StartAsync(dir);

        // Multi-argument writes and reads go through a transaction in libxenstore.
        Assert.That((await xs.RunAsync("xenstore-write", "/vm/1/name", "guest", "/vm/1/memory", "512")).Code, Is.Zero);
        var read = await xs.RunAsync("xenstore-read", "/vm/1/name", "/vm/1/memory");
        Assert.That((read.Code, read.Out), Is.EqualTo((0, "guest\n512\n")));

        var ls = await xs.RunAsync("xenstore-ls", "/vm");
        Assert.That(ls.Out, Is.EqualTo("1 = \"\"\n memory = \"512\"\n name = \"guest\"\n"));
        var list = await xs.RunAsync("xenstore-list", "/vm/1");
        Assert.That((list.Code, list.Out), Is.EqualTo((0, "memory\nname\n")));

        Assert.That((await xs.RunAsync("xenstore-exists", "/vm/1/name")).Code, Is.Zero);
        Assert.That((await xs.RunAsync("xenstore-exists", "/vm/2")).Code, Is.EqualTo(1));

        Assert.That((await xs.RunAsync("xenstore-chmod", "/vm/1/name", "r0", "b3")).Code, Is.Zero);
        var perms = await xs.RunAsync("xenstore-ls", "-p", "/vm/1");
        Assert.That(perms.Out, Does.Match(@"name = ""guest"" *[ .]*\(r0,b3\)"));

        Assert.That((await xs.RunAsync("xenstore-rm", "/vm/1/memory")).Code, Is.Zero);
        Assert.That((await xs.RunAsync("xenstore-rm", "/vm/1/memory")).Code, Is.Zero, "removing a missing leaf under an existing parent succeeds");
        Assert.That((await xs.RunAsync("xenstore-read", "/vm/1/memory")).Code, Is.Not.Zero);
        var missing = await xs.RunAsync("xenstore-read", "/vm/nothing");
        Assert.That(missing.Err, Does.Contain("couldn't read path /vm/nothing"));

        Assert.That((await xs.RunAsync("xenstore-read", "/local/domain/0/name")).Out, Is.EqualTo("Domain-0\n"));
        Assert.That((await xs.RunAsync("xenstore-read", "name")).Out, Is.EqualTo("Domain-0\n"), "relative paths resolve under /local/domain/0");
    }

    [Test]
    public async Task Xenstore_watch_prints_the_initial_event_and_a_change()
    {
        using var dir = new TempDir("xsp");
        using var xs = await XenStoredProcess.StartAsync(dir);
        await xs.RunAsync("xenstore-write", "/w", "");
        using var watch = new ChildProcess("xenstore-watch", ["-n", "2", "/w"], xs.Env);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!watch.StdOut.Contains("/w\n") && DateTime.UtcNow < deadline) await Task.Delay(20);
        Assert.That(watch.StdOut, Is.EqualTo("/w\n"), "the watch fires once at registration");
        await xs.RunAsync("xenstore-write", "/w/child", "1");
        Assert.That(await watch.WaitAsync(TimeSpan.FromSeconds(10)), Is.Zero);
        Assert.That(watch.StdOut, Is.EqualTo("/w\n/w/child\n"));
    }

    [Test]
    public async Task Test_xenstore_passes_every_test()
    {
        using var dir = new TempDir("xsp");
        using var xs = await XenStoredProcess.StartAsync(dir);
        var (code, output, err) = await xs.RunAsync(TestXenstore);
        TestContext.Out.WriteLine(output);
        Assert.That(code, Is.Zero, output + err);
        var names = new[] { "read 1", "read 2000", "write 1", "write 2000", "dir", "rm node", "rm dir", "ta empty", "ta empty x", "ta rmw", "ta rmw x", "ta err" };
        foreach (var name in names)
            Assert.That(output, Does.Match($@"(?m)^{name} *: \d+ ns$"), $"test '{name}' ran and passed");
        Assert.That(output, Does.Not.Contain("failed"));
        Assert.That((await xs.RunAsync("xenstore-exists", "/local/domain/0/xenstore-test")).Code, Is.EqualTo(1), "its cleanup transaction removed its tree");
    }

    [Test]
    public async Task Test_xenstore_random_mode_passes_for_20_seconds()
    {
        using var dir = new TempDir("xsp");
        using var xs = await XenStoredProcess.StartAsync(dir);
        var (code, output, err) = await xs.RunAsync(TestXenstore, "-r", "20");
        Assert.That(code, Is.Zero, output + err);
        Assert.That(output, Does.Not.Contain("failed"));
        Assert.That(xs.Process.HasExited, Is.False);
    }

    [Test]
    public async Task Daemon_writes_its_pid_file_and_stops_cleanly_on_SIGTERM()
    {
        using var dir = new TempDir("xsp");
        var xs = await XenStoredProcess.StartAsync(dir);
        using (xs)
        {
            Assert.That(File.ReadAllText(xs.PidFile), Is.EqualTo(xs.Process.Pid + "\n"));
            await using (var client = await XenStoreClient.ConnectAsync(xs.SocketPath))
                await client.WriteAsync("/x", "1");
            Assert.That(await xs.TerminateAsync(), Is.Zero);
            Assert.That(File.Exists(xs.SocketPath), Is.False, "socket removed");
            Assert.That(File.Exists(xs.PidFile), Is.False, "pid file removed");
            Assert.That(xs.Process.StdErr, Does.Contain("stopping on SIGTERM"));
        }
    }

    [Test]
    public async Task The_state_file_keeps_the_tree_across_a_restart()
    {
        using var dir = new TempDir("xsp");
        var state = dir["xenstore.state"];
        using (var first = await XenStoredProcess.StartAsync(dir, "--state-file", state))
        {
            await first.RunAsync("xenstore-write", "/keep/me", "please");
            await first.RunAsync("xenstore-chmod", "/keep/me", "r0", "b9");
            Assert.That(await first.TerminateAsync(), Is.Zero);
        }
        Assert.That(File.Exists(state), Is.True);
        Assert.That(File.Exists(state + ".tmp"), Is.False, "written via a temporary file renamed into place");
        using var second = await XenStoredProcess.StartAsync(dir, "--state-file", state);
        Assert.That((await second.RunAsync("xenstore-read", "/keep/me")).Out, Is.EqualTo("please\n"));
        Assert.That((await second.RunAsync("xenstore-ls", "-p", "/keep")).Out, Does.Contain("(r0,b9)"));
    }

    [Test]
    public async Task A_bad_option_prints_usage_and_exits_EINVAL()
    {
        var (code, _, err) = await ChildProcess.RunAsync(RepoPaths.Executable("xenstored"), ["--bogus", "x"]);
        Assert.That(code, Is.EqualTo(22));
        Assert.That(err, Does.Contain("unknown option --bogus").And.Contain("usage: xenstored"));
    }

    [Test]
    public async Task A_corrupt_state_file_stops_start_up_with_the_reason()
    {
        using var dir = new TempDir("xsp");
        File.WriteAllText(dir["bad.state"], "garbage");
        var (code, _, err) = await ChildProcess.RunAsync(RepoPaths.Executable("xenstored"),
            ["--socket", dir["s"], "--state-file", dir["bad.state"]], timeout: TimeSpan.FromSeconds(20));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err, Does.Contain("not a xenstored state file"));
    }
}
