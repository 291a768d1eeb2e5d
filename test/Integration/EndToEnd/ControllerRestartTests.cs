using System.Text.Json;
using BlkTapCtrl.Testing;

namespace BlkTapCtrl.Integration.Tests.EndToEnd;

/// <summary>
/// The controller dies or is restarted while VBDs run (issue 9: "controller restart mid-flight"). A worker
/// outlives its controller (systemd's KillMode=process, or a crash); the next controller must take it back —
/// same pid, same cookie, its NBD clients never disconnected — and never start a second tapdisk on the image.
/// </summary>
[TestFixture, Parallelizable(ParallelScope.All)]
public class ControllerRestartTests
{
    private const int DomId = 5, DevId = 768;

    [Test]
    public async Task Killed_controller_is_replaced_and_the_running_worker_is_reattached_with_nothing_lost()
    {
        await using var stack = await StackHarness.StartAsync();
        string image = CreateImage(stack);
        await stack.RegisterAsync(DomId, DevId, "aio:" + image);
        int pid = await stack.WaitForPidAsync(DomId, DevId);
        try
        {
            string cookie = (await stack.Xs.ReadAsync(stack.Backend(DomId, DevId) + "/tapdisk-uuid")).TrimEnd('\0');
            string nbd = (await ListOneAsync(stack)).GetProperty("nbdSocket").GetString()!;
            var before = await WriteAsync(stack, nbd, offset: 0);

            await KillControllerAsync(stack);
            Assert.That(ProcessAlive(pid), Is.True, "the worker outlives a killed controller");
            // Without any controller the guest's I/O goes on: the datapath never passes through it.
            var during = await WriteAsync(stack, nbd, offset: 1 << 20);

            await stack.StartControllerAsync();
            var channel = await ListOneAsync(stack);
            Assert.That(channel.GetProperty("pid").GetInt32(), Is.EqualTo(pid), "the same worker, not a second one");
            Assert.That(channel.GetProperty("cookie").GetInt32().ToString(System.Globalization.CultureInfo.InvariantCulture), Is.EqualTo(cookie));
            Assert.That(channel.GetProperty("channel").GetString(), Is.EqualTo("Running"));
            Assert.That(channel.GetProperty("vbd").GetString(), Is.EqualTo("Unpaused"));
            Assert.That(TapdisksOn(stack.RunDir), Is.EqualTo(new[] { pid }), "exactly one tapdisk of this run directory");

            // The reattached channel obeys the toolstack: pause, then a kill while paused, then unpause.
            await stack.TapCtlOkAsync("pause", "-d", $"{DomId}", "-v", $"{DevId}");
            await KillControllerAsync(stack);
            await stack.StartControllerAsync();
            channel = await ListOneAsync(stack);
            Assert.That((channel.GetProperty("channel").GetString(), channel.GetProperty("vbd").GetString()), Is.EqualTo(("Paused", "Paused")),
                "pause-done tells the new controller the worker is paused");
            await stack.TapCtlOkAsync("unpause", "-d", $"{DomId}", "-v", $"{DevId}");
            channel = await ListOneAsync(stack);
            Assert.That((channel.GetProperty("channel").GetString(), channel.GetProperty("pid").GetInt32()), Is.EqualTo(("Running", pid)));

            Assert.That(await ReadAsync(stack, nbd, 0, before.Length), Is.EqualTo(before), "acknowledged before the kill");
            Assert.That(await ReadAsync(stack, nbd, 1 << 20, during.Length), Is.EqualTo(during), "acknowledged while no controller ran");

            await stack.TapCtlOkAsync("close", "-d", $"{DomId}", "-v", $"{DevId}");
            await StackHarness.WaitForAsync(() => Task.FromResult(!ProcessAlive(pid)), TimeSpan.FromSeconds(20), "the reattached worker to exit after CLOSE");
            Assert.That(await stack.TapCtlOkAsync("list", "--json"), Is.EqualTo("[]\n"));
            Assert.That(Directory.GetFiles(stack.RunDir, "tapctrl*"), Is.Empty, "its FIFOs are gone with it");
        }
        finally
        {
            KillIfAlive(pid);
        }
    }

    [Test]
    public async Task Worker_that_died_while_no_controller_ran_is_started_afresh_on_the_same_image()
    {
        await using var stack = await StackHarness.StartAsync();
        string image = CreateImage(stack);
        await stack.RegisterAsync(DomId, DevId, "aio:" + image);
        int pid = await stack.WaitForPidAsync(DomId, DevId);
        string nbd = (await ListOneAsync(stack)).GetProperty("nbdSocket").GetString()!;
        var data = await WriteAsync(stack, nbd, offset: 2 << 20);

        await KillControllerAsync(stack);
        Signals.Send(pid, Signals.SIGKILL);
        await StackHarness.WaitForAsync(() => Task.FromResult(!ProcessAlive(pid)), TimeSpan.FromSeconds(20), "the worker to die");

        await stack.StartControllerAsync();
        int fresh = 0;
        await StackHarness.WaitForAsync(async () =>
        {
            var c = await ListOneAsync(stack);
            fresh = c.GetProperty("pid").GetInt32();
            return c.GetProperty("channel").GetString() == "Running" && fresh != 0 && fresh != pid;
        }, TimeSpan.FromSeconds(30), "a fresh worker", () => stack.Controller?.StdErr ?? "");
        try
        {
            nbd = (await ListOneAsync(stack)).GetProperty("nbdSocket").GetString()!;
            Assert.That(await ReadAsync(stack, nbd, 2 << 20, data.Length), Is.EqualTo(data));
            Assert.That(TapdisksOn(stack.RunDir), Is.EqualTo(new[] { fresh }));
        }
        finally
        {
            KillIfAlive(fresh);
        }
    }

    [Test]
    public async Task Sigterm_restart_closes_every_vbd_and_the_next_controller_starts_them_again()
    {
        await using var stack = await StackHarness.StartAsync();
        string image = CreateImage(stack);
        await stack.RegisterAsync(DomId, DevId, "aio:" + image);
        int pid = await stack.WaitForPidAsync(DomId, DevId);
        string nbd = (await ListOneAsync(stack)).GetProperty("nbdSocket").GetString()!;
        var data = await WriteAsync(stack, nbd, offset: 0);

        await stack.StopControllerAsync();
        Assert.That(stack.Controller!.ExitCode, Is.Zero);
        Assert.That(ProcessAlive(pid), Is.False, "a clean stop closes the worker first");

        await stack.StartControllerAsync();
        int fresh = 0;
        await StackHarness.WaitForAsync(async () =>
        {
            var c = await ListOneAsync(stack);
            fresh = c.GetProperty("pid").GetInt32();
            return c.GetProperty("channel").GetString() == "Running" && fresh != 0;
        }, TimeSpan.FromSeconds(30), "the VBD to run again", () => stack.Controller?.StdErr ?? "");
        Assert.That(fresh, Is.Not.EqualTo(pid));
        nbd = (await ListOneAsync(stack)).GetProperty("nbdSocket").GetString()!;
        Assert.That(await ReadAsync(stack, nbd, 0, data.Length), Is.EqualTo(data));
    }

    private static string CreateImage(StackHarness stack)
    {
        string image = Path.Combine(stack.Dir, "disk.img");
        File.WriteAllBytes(image, new byte[4 << 20]);
        return image;
    }

    /// <summary>SIGKILL: no clean-up at all, as a crash or an OOM kill. Exit is seen by pid, not by pipe EOF (the worker keeps the pipes).</summary>
    private static async Task KillControllerAsync(StackHarness stack)
    {
        var controller = stack.Controller!;
        Signals.Send(controller.Pid, Signals.SIGKILL);
        await StackHarness.WaitForAsync(() => Task.FromResult(!ProcessAlive(controller.Pid)), TimeSpan.FromSeconds(20), "the controller to die");
    }

    private static async Task<byte[]> WriteAsync(StackHarness stack, string nbd, long offset)
    {
        var data = new byte[256 << 10];
        Random.Shared.NextBytes(data);
        string file = Path.Combine(stack.Dir, $"w{offset}.bin");
        await File.WriteAllBytesAsync(file, data);
        var (code, _, err) = await ChildProcess.RunAsync("qemu-io",
            ["-f", "raw", "-c", $"write -s {file} {offset} {data.Length}", "-c", "flush", $"nbd+unix:///?socket={nbd}"]);
        Assert.That(code, Is.Zero, err);
        return data;
    }

    private static async Task<byte[]> ReadAsync(StackHarness stack, string nbd, long offset, int length)
    {
        string file = Path.Combine(stack.Dir, $"r{offset}-{Guid.NewGuid():N}.bin");
        var (code, _, err) = await ChildProcess.RunAsync("nbdcopy", [$"nbd+unix:///?socket={nbd}", file]);
        Assert.That(code, Is.Zero, err);
        return File.ReadAllBytes(file).AsSpan((int)offset, length).ToArray();
    }

    private static async Task<JsonElement> ListOneAsync(StackHarness stack)
    {
        using var doc = JsonDocument.Parse(await stack.TapCtlOkAsync("list", "--json"));
        Assert.That(doc.RootElement.GetArrayLength(), Is.EqualTo(1), doc.RootElement.ToString());
        return doc.RootElement[0].Clone();
    }

    private static bool ProcessAlive(int pid) =>
        File.Exists($"/proc/{pid}/stat") && !File.ReadAllText($"/proc/{pid}/stat").Split(") ")[1].StartsWith('Z');

    /// <summary>Live tapdisk processes whose control FIFOs are in <paramref name="runDir"/>.</summary>
    private static int[] TapdisksOn(string runDir) =>
        Directory.GetDirectories("/proc")
            .Select(d => int.TryParse(Path.GetFileName(d), out int p) ? p : 0)
            .Where(p => p > 0 && ProcessAlive(p))
            .Where(p =>
            {
                try { return File.ReadAllText($"/proc/{p}/cmdline").Contains(Path.Combine(runDir, "tapctrlwrite"), StringComparison.Ordinal); }
                catch (IOException) { return false; }
                catch (UnauthorizedAccessException) { return false; }
            })
            .ToArray();

    private static void KillIfAlive(int pid)
    {
        if (pid > 0 && ProcessAlive(pid) && TapdiskPid(pid))
            Signals.Send(pid, Signals.SIGKILL);
    }

    private static bool TapdiskPid(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/cmdline").Contains("tapctrl", StringComparison.Ordinal); }
        catch (IOException) { return false; }
    }
}
