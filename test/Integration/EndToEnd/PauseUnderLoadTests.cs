using BlkTapCtrl.Testing;

namespace BlkTapCtrl.Integration.Tests.EndToEnd;

/// <summary>
/// Issue 9: a hundred pause/unpause cycles driven through XenStore exactly as the toolstack does, while fio
/// writes through the VBD's NBD export without pause. A paused VBD holds the client's requests (it never fails
/// them), so fio must see no I/O error, and its verify pass (crc32c of every block it wrote, read back) proves
/// no acknowledged write was lost across the cycles.
/// </summary>
[TestFixture]
public class PauseUnderLoadTests
{
    private const int DomId = 9, DevId = 832, Cycles = 100;

    [TestCase("aio")]
    [TestCase("vhd")]
    public async Task Hundred_pause_unpause_cycles_under_fio_lose_no_write_and_fail_no_request(string type)
    {
        await using var stack = await StackHarness.StartAsync();
        string image = Path.Combine(stack.Dir, type == "vhd" ? "disk.vhd" : "disk.img");
        if (type == "vhd")
        {
            // A dynamic VHD: fio's first writes allocate blocks while the VBD is paused and resumed under them.
            var (code, output, err) = await ChildProcess.RunAsync(RepoPaths.Executable("vhd-util"), ["create", "-n", image, "-s", "16"]);
            Assert.That(code, Is.Zero, output + err);
        }
        else
        {
            using var f = File.Create(image);
            f.SetLength(16 << 20);
        }
        await stack.RegisterAsync(DomId, DevId, $"{type}:{image}");
        await stack.WaitForPidAsync(DomId, DevId);
        string p = stack.Backend(DomId, DevId);
        string nbd = (await stack.Xs.ReadAsync(p + "/nbd-socket")).TrimEnd('\0');

        using var stop = new CancellationTokenSource();
        var load = Task.Run(() => FioUntilAsync(nbd, stop.Token));
        try
        {
            await WaitForFirstFioRunToStartAsync(stack, load);
            for (int cycle = 1; cycle <= Cycles; cycle++)
            {
                Assert.That(load.IsCompleted, Is.False, $"fio stopped early (cycle {cycle}): {(load.IsFaulted ? load.Exception : null)}");
                await stack.Xs.WriteAsync(p + "/pause", "");
                await WaitAsync(async () => await stack.Xs.ExistsAsync(p + "/pause-done"), $"pause-done of cycle {cycle}", stack);
                await stack.Xs.RemoveAsync(p + "/pause");
                await WaitAsync(async () => !await stack.Xs.ExistsAsync(p + "/pause-done"), $"unpause of cycle {cycle}", stack);
            }
        }
        finally
        {
            stop.Cancel();
        }
        var runs = await load;
        Assert.That(runs.Count, Is.GreaterThan(0));
        foreach (var run in runs)
            Assert.That(run.Error, Is.EqualTo("0"), $"fio run reported error {run.Error}:\n{run.Output}");
        // Every run writes the whole 16 MiB once; on a fast machine the hundred cycles fit inside the first run,
        // so one run's worth is the floor (each cycle above already checked fio was still running when it began).
        Assert.That(runs.Sum(r => r.WrittenKiB), Is.AtLeast(16 * 1024), "fio really wrote during the cycles");
        if (type == "vhd")
        {
            await stack.Xs.WriteAsync(p + "/tapdisk-request", "shutdown-normal");
            await StackHarness.WaitForAsync(async () => !await stack.Xs.ExistsAsync(p + "/tapdisk-pid") || await ClosedAsync(stack), TimeSpan.FromSeconds(30), "the VBD to close");
            var (code, output, err) = await ChildProcess.RunAsync(RepoPaths.Executable("vhd-util"), ["check", "-n", image]);
            Assert.That(code, Is.Zero, $"vhd-util check after the cycles: {output}{err}");
            // qemu's vpc driver has no check; libvhdi must still parse the image the cycles left.
            (code, output, err) = await ChildProcess.RunAsync("vhdiinfo", [image]);
            Assert.That(code, Is.Zero, $"vhdiinfo after the cycles: {output}{err}");
        }
    }

    private static async Task<bool> ClosedAsync(StackHarness stack)
    {
        using var doc = System.Text.Json.JsonDocument.Parse(await stack.TapCtlOkAsync("list", "--json"));
        return doc.RootElement.EnumerateArray().All(c => c.GetProperty("pid").GetInt32() == 0);
    }

    private sealed record FioRun(string Error, long WrittenKiB, string Output);

    /// <summary>Back-to-back fio runs (random 4 KiB writes over 16 MiB, then a crc32c verify pass) until stopped; the last run always finishes.</summary>
    private static async Task<List<FioRun>> FioUntilAsync(string nbd, CancellationToken stop)
    {
        var runs = new List<FioRun>();
        do
        {
            var (code, output, err) = await ChildProcess.RunAsync("fio",
                ["--name=cycles", "--ioengine=nbd", $"--uri=nbd+unix:///?socket={nbd}", "--rw=randwrite", "--bs=4k", "--iodepth=8",
                 "--size=16M", "--verify=crc32c", "--do_verify=1", "--verify_fatal=1", "--output-format=terse", "--terse-version=3"],
                timeout: TimeSpan.FromMinutes(5));
            var fields = output.Trim().Split('\n')[^1].Split(';');
            // terse v3: field 4 = error, field 46 = write KiB
            runs.Add(new FioRun(code == 0 && fields.Length > 46 ? fields[4] : $"exit {code}: {err}",
                fields.Length > 46 && long.TryParse(fields[46], out long kib) ? kib : 0, output + err));
            if (code != 0) break;
        }
        while (!stop.IsCancellationRequested);
        return runs;
    }

    private static async Task WaitForFirstFioRunToStartAsync(StackHarness stack, Task load)
    {
        // The first requests reach the worker as soon as fio connects; its stats counter says so.
        await Task.Delay(300);
        Assert.That(load.IsCompleted, Is.False, "fio failed at once");
    }

    private static Task WaitAsync(Func<Task<bool>> condition, string what, StackHarness stack) =>
        StackHarness.WaitForAsync(condition, TimeSpan.FromSeconds(30), what, () => stack.Controller?.StdErr + stack.Controller?.StdOut);
}
