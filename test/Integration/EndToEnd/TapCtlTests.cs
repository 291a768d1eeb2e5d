using System.Text.Json;
using BlkTapCtrl.Testing;

namespace BlkTapCtrl.Integration.Tests.EndToEnd;

/// <summary>tap-ctl against a real blktapctrl, xenstored and tapdisk: every subcommand, and its errors.</summary>
[TestFixture, Parallelizable(ParallelScope.All)]
public sealed class TapCtlTests
{
    [Test]
    public async Task Without_a_controller_every_controller_command_fails_with_exit_3_naming_the_socket()
    {
        using var dir = new TempDir("tapctl");
        string socket = dir["blktapctrl.sock"];
        foreach (var args in new[] { new[] { "list" }, ["stats", "-d", "1", "-v", "2"], ["pause", "-d", "1", "-v", "2"], ["list", "--json"] })
        {
            var (code, _, err) = await ChildProcess.RunAsync(RepoPaths.Executable("tap-ctl"), [.. args, "--socket", socket]);
            Assert.That(code, Is.EqualTo(3), err);
            Assert.That(err, Does.Contain(socket).And.Contain("is blktapctrl running"));
        }
    }

    [Test]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task Control_socket_is_owner_only_and_removed_when_the_controller_stops()
    {
        await using var stack = await StackHarness.StartAsync();
        Assert.That(File.GetUnixFileMode(stack.ControlSocket), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
        await stack.StopControllerAsync();
        Assert.That(File.Exists(stack.ControlSocket), Is.False);
        var (code, _, err) = await stack.TapCtlAsync("list");
        Assert.That(code, Is.EqualTo(3), err);
    }

    [Test]
    public async Task Spawn_list_stats_pause_unpause_close_drive_one_vbd_through_xenstore()
    {
        await using var stack = await StackHarness.StartAsync();
        string image = Path.Combine(stack.Dir, "disk.img");
        File.WriteAllBytes(image, new byte[4 << 20]);

        string spawned = await stack.TapCtlOkAsync("spawn", "-d", "7", "-v", "51712", "-a", "aio:" + image);
        Assert.That(spawned, Does.Match(@"^pid \d+ minor 1 cookie \d+ nbd .*nbd1\.sock\n$"));

        string table = await stack.TapCtlOkAsync("list");
        Assert.That(table, Does.StartWith("domid"));
        Assert.That(table, Does.Contain("running").And.Contain("unpaused").And.Contain("aio:" + image).And.Contain("nbd1.sock"));

        var channel = await ListOneAsync(stack);
        Assert.That(channel.GetProperty("domid").GetInt32(), Is.EqualTo(7));
        Assert.That(channel.GetProperty("devid").GetInt32(), Is.EqualTo(51712));
        Assert.That(channel.GetProperty("channel").GetString(), Is.EqualTo("Running"));
        int pid = channel.GetProperty("pid").GetInt32();
        Assert.That(File.Exists($"/proc/{pid}/exe"), Is.True, "the pid listed is a live process");
        string nbd = channel.GetProperty("nbdSocket").GetString()!;
        Assert.That(await stack.Xs.TryReadAsync(stack.Backend(7, 51712) + "/nbd-socket"), Is.EqualTo(nbd), "published in XenStore too");

        // Data through the NBD export: 1 MiB written by nbdcopy lands in the image.
        string input = Path.Combine(stack.Dir, "in.bin");
        var data = new byte[1 << 20];
        Random.Shared.NextBytes(data);
        File.WriteAllBytes(input, data);
        var (copy, _, copyErr) = await ChildProcess.RunAsync("nbdcopy", [input, $"nbd+unix:///?socket={nbd}"]);
        Assert.That(copy, Is.Zero, copyErr);

        // stats: this VBD's counters (it served the writes) as JSON.
        using (var stats = JsonDocument.Parse(await WaitForStatsAsync(stack)))
        {
            Assert.That(stats.RootElement.GetProperty("vbd").GetProperty("cookie").GetInt32(), Is.EqualTo(channel.GetProperty("cookie").GetInt32()));
            var vbds = stats.RootElement.GetProperty("stats").GetProperty("vbds");
            Assert.That(vbds.GetArrayLength(), Is.EqualTo(1));
            Assert.That(vbds[0].GetProperty("received").GetInt64(), Is.GreaterThan(0));
            Assert.That(stats.RootElement.GetProperty("stats").GetProperty("pid").GetInt32(), Is.EqualTo(pid));
        }

        // list: the chain the worker has open (from its snapshot), not just the params the controller read.
        Assert.That((await ListOneAsync(stack)).GetProperty("images").EnumerateArray().Select(i => i.GetString()), Is.EqualTo(new[] { "aio:" + image }));

        await stack.TapCtlOkAsync("pause", "-d", "7", "-v", "51712");
        Assert.That(await stack.Xs.ExistsAsync(stack.Backend(7, 51712) + "/pause-done"), Is.True);
        Assert.That((await ListOneAsync(stack)).GetProperty("channel").GetString(), Is.EqualTo("Paused"));
        await stack.TapCtlOkAsync("unpause", "-d", "7", "-v", "51712");
        Assert.That(await stack.Xs.ExistsAsync(stack.Backend(7, 51712) + "/pause-done"), Is.False);
        Assert.That((await ListOneAsync(stack)).GetProperty("channel").GetString(), Is.EqualTo("Running"));

        await stack.TapCtlOkAsync("close", "-d", "7", "-v", "51712");
        Assert.That(await stack.Xs.ExistsAsync(stack.Backend(7, 51712)), Is.False);
        Assert.That(await stack.TapCtlOkAsync("list", "--json"), Is.EqualTo("[]\n"));
        Assert.That(File.Exists(nbd), Is.False, "the NBD socket goes with the VBD");
        Assert.That(File.ReadAllBytes(image).AsSpan(0, data.Length).SequenceEqual(data), Is.True, "the written data is in the image");
    }

    [Test]
    public async Task Errors_name_the_vbd_and_change_nothing()
    {
        await using var stack = await StackHarness.StartAsync();
        var (code, _, err) = await stack.TapCtlAsync("pause", "-d", "3", "-v", "9");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err, Does.Contain("no VBD 3/9"));
        Assert.That(await stack.Xs.ExistsAsync(stack.Backend(3, 9)), Is.False, "a failed pause creates nothing");
        (code, _, err) = await stack.TapCtlAsync("stats", "-d", "3", "-v", "9");
        Assert.That((code, err), Is.EqualTo((1, "tap-ctl: stats: no VBD 3/9\n")));
        (code, _, err) = await stack.TapCtlAsync("unpause", "-d", "3", "-v", "9", "-a", "nocolon");
        Assert.That(code, Is.EqualTo(2), err);
        (code, _, err) = await stack.TapCtlAsync("spawn", "-d", "3", "-v", "9", "-a", "aio:" + Path.Combine(stack.Dir, "missing.img"), "-t", "10");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err, Does.Contain("did not start"));
    }

    [TestCase("dot", "digraph")]
    [TestCase("mermaid", "stateDiagram")]
    public async Task Graph_draws_the_machines(string format, string marker)
    {
        var (code, output, err) = await ChildProcess.RunAsync(RepoPaths.Executable("tap-ctl"), ["graph", "channel", "-f", format]);
        Assert.That(code, Is.Zero, err);
        Assert.That(output, Does.Contain(marker).And.Contain("WaitPause"));
        (code, output, _) = await ChildProcess.RunAsync(RepoPaths.Executable("tap-ctl"), ["graph", "-f", format]);
        Assert.That(code, Is.Zero);
        Assert.That(output.Split(marker).Length - 1, Is.EqualTo(3), "all three machines");
    }

    private static async Task<JsonElement> ListOneAsync(StackHarness stack)
    {
        using var doc = JsonDocument.Parse(await stack.TapCtlOkAsync("list", "--json"));
        Assert.That(doc.RootElement.GetArrayLength(), Is.EqualTo(1));
        return doc.RootElement[0].Clone();
    }

    private static async Task<string> WaitForStatsAsync(StackHarness stack)
    {
        string output = "", error = "";
        await StackHarness.WaitForAsync(async () =>
        {
            var (code, o, e) = await stack.TapCtlAsync("stats", "-d", "7", "-v", "51712");
            (output, error) = (o, e);
            return code == 0 && o.Contains("\"received\"", StringComparison.Ordinal) && !o.Contains("\"received\": 0", StringComparison.Ordinal);
        }, TimeSpan.FromSeconds(10), "the stats snapshot", () => $"last answer: {error}{output}; log dir: {string.Join(", ", Directory.GetFiles(stack.LogDir))}");
        return output;
    }
}
