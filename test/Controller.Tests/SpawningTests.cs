using System.Collections.Concurrent;
using BlkTapCtrl.Controller.Spawning;
using BlkTapCtrl.Protocol.Control;
using BlkTapCtrl.Testing;

namespace BlkTapCtrl.Controller.Tests;

/// <summary>Spawning (§1.5), FIFOs, the 2 s message limit and reaping, with real processes and FIFOs.</summary>
public class SpawningTests
{
    private static async Task<ChildExit> WaitExit(BlockingCollection<ChildExit> exits)
    {
        return await Task.Run(() =>
        {
            Assert.That(exits.TryTake(out var e, TimeSpan.FromSeconds(10)), Is.True, "child exit not reaped");
            return e!;
        });
    }

    [Test]
    public async Task CA26523_TAPDISK_override_is_executed_with_the_original_argv()
    {
        using var dir = new TempDir();
        var script = dir["record-argv.sh"];
        File.WriteAllText(script, $"#!/bin/sh\nprintf '%s\\n' \"$@\" > {dir["argv"]}\nexit 0\n");
        File.SetUnixFileMode(script, (UnixFileMode)0x1ed);
        var exits = new BlockingCollection<ChildExit>();
        using var reaper = new ChildReaper(exits.Add);
        var launcher = new TapdiskLauncher("/nonexistent/tapdisk", 24, name => name == "TAPDISK" ? script : null);
        Assert.That(launcher.Program, Is.EqualTo(script));

        using var fifos = ControlFifos.Create(dir.Path, 7);
        int pid = launcher.Spawn(fifos);
        reaper.Track(pid);
        var exit = await WaitExit(exits);

        Assert.That(exit, Is.EqualTo(new ChildExit(pid, 0, null)));
        Assert.That(File.ReadAllLines(dir["argv"]), Is.EqualTo(new[] { "-ldaemon", dir["tapctrlwrite7"], dir["tapctrlread7"] }));
    }

    [Test]
    public void Without_override_the_configured_program_is_used_and_exec_failure_is_reported()
    {
        using var dir = new TempDir();
        var launcher = new TapdiskLauncher("/nonexistent/tapdisk", 24, _ => null);
        Assert.That(launcher.Program, Is.EqualTo("/nonexistent/tapdisk"));
        using var fifos = ControlFifos.Create(dir.Path, 1);
        Assert.That(() => launcher.Spawn(fifos), Throws.TypeOf<IOException>().With.Message.Contains("/nonexistent/tapdisk"));
    }

    [Test]
    public async Task Spawned_worker_keeps_only_fds_0_to_2()
    {
        using var dir = new TempDir();
        var script = dir["fds.sh"];
        File.WriteAllText(script, $"#!/bin/sh\nls -l /proc/$$/fd > {dir["fds"]}.l\nls /proc/$$/fd > {dir["fds"]}\n");
        File.SetUnixFileMode(script, (UnixFileMode)0x1ed);
        var exits = new BlockingCollection<ChildExit>();
        using var reaper = new ChildReaper(exits.Add);
        using var fifos = ControlFifos.Create(dir.Path, 2);
        int pid = new TapdiskLauncher(script, 24, _ => null).Spawn(fifos);
        reaper.Track(pid);
        await WaitExit(exits);
        // The shell keeps its script (fd 10) and a saved stdout (fd 11) itself; nothing of ours may be there.
        var listing = File.ReadAllText(dir["fds"] + ".l");
        Assert.That(listing, Does.Not.Contain("tapctrl").And.Not.Contain("socket:").And.Not.Contain("anon_inode"),
            "no FIFO, socket or epoll fd leaked into the worker");
    }

    [TestCase("exit 3", 3, null)]
    [TestCase("exit 0", 0, null)]
    [TestCase("kill -9 $$", null, 9)]
    [TestCase("kill -TERM $$", null, 15)]
    public async Task Reaper_maps_exit_status_and_signal(string body, int? status, int? signal)
    {
        using var dir = new TempDir();
        var script = dir["w.sh"];
        File.WriteAllText(script, $"#!/bin/sh\n{body}\n");
        File.SetUnixFileMode(script, (UnixFileMode)0x1ed);
        var exits = new BlockingCollection<ChildExit>();
        using var reaper = new ChildReaper(exits.Add);
        using var fifos = ControlFifos.Create(dir.Path, 3);
        int pid = new TapdiskLauncher(script, 24, _ => null).Spawn(fifos);
        reaper.Track(pid);
        Assert.That(await WaitExit(exits), Is.EqualTo(new ChildExit(pid, status, signal)));
        Assert.That(reaper.TrackedCount, Is.Zero);
    }

    [Test]
    public async Task Fifos_are_0777_and_stale_ones_replaced()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["tapctrlwrite4"], "stale regular file");
        using var fifos = ControlFifos.Create(dir.Path, 4);
        foreach (var path in new[] { fifos.WritePath, fifos.ReadPath })
        {
            Assert.That(File.GetUnixFileMode(path), Is.EqualTo((UnixFileMode)0x1ff));
            var (_, type, _) = await ChildProcess.RunAsync("stat", ["-c", "%F", path]);
            Assert.That(type.Trim(), Is.EqualTo("fifo"));
        }
        fifos.Dispose();
        Assert.That(File.Exists(dir["tapctrlwrite4"]) || File.Exists(dir["tapctrlread4"]), Is.False, "unlinked on close");
    }

    [Test]
    public async Task Messages_cross_the_fifos_and_a_send_nobody_reads_times_out_in_2_s()
    {
        using var dir = new TempDir();
        using var fifos = ControlFifos.Create(dir.Path, 5);
        using var link = new WorkerLink(fifos, pid: 0, minor: 5);

        // The worker's side: it reads tapctrlwrite and writes tapctrlread.
        await using var workerIn = new FileStream(fifos.WritePath, FileMode.Open, FileAccess.Read);
        await using var workerOut = new FileStream(fifos.ReadPath, FileMode.Open, FileAccess.Write);

        await link.SendAsync(ControlMessage.Simple(ControlMessageType.Pid, 9));
        var record = new byte[ControlMessage.Size];
        await workerIn.ReadExactlyAsync(record);
        Assert.That(ControlMessage.Read(record), Is.EqualTo(ControlMessage.Simple(ControlMessageType.Pid, 9)));

        var received = new TaskCompletionSource<ControlMessage>();
        using var poller = new FifoPoller();
        link.Start(poller, (_, m) => received.TrySetResult(m), (_, e) => received.TrySetException(new IOException(e)));
        ControlMessage.PidResponse(9, 4242).WriteTo(record);
        // Written in two pieces: the reader reassembles records.
        await workerOut.WriteAsync(record.AsMemory(0, 100));
        await workerOut.FlushAsync();
        await Task.Delay(50);
        await workerOut.WriteAsync(record.AsMemory(100));
        await workerOut.FlushAsync();
        Assert.That(await received.Task.WaitAsync(TimeSpan.FromSeconds(5)), Is.EqualTo(ControlMessage.PidResponse(9, 4242)));

        // Nobody reads any more: the pipe fills, and the send fails within the 2 s limit instead of blocking.
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var failure = Assert.ThrowsAsync<IOException>(async () =>
        {
            for (int i = 0; i < 1000; i++) await link.SendAsync(ControlMessage.Simple(ControlMessageType.Pause, 9));
        });
        Assert.That(failure!.Message, Does.Contain("timed out"));
        Assert.That(sw.Elapsed, Is.LessThan(TimeSpan.FromSeconds(5)));
    }

    [Test]
    public async Task A_record_left_half_written_for_2_s_is_a_read_failure_naming_the_bytes()
    {
        using var dir = new TempDir();
        using var fifos = ControlFifos.Create(dir.Path, 6);
        using var link = new WorkerLink(fifos, pid: 0, minor: 6);
        using var poller = new FifoPoller();
        var failed = new TaskCompletionSource<string>();
        link.Start(poller, (_, m) => failed.TrySetException(new AssertionException($"unexpected {m}")), (_, e) => failed.TrySetResult(e));
        await using var workerOut = new FileStream(fifos.ReadPath, FileMode.Open, FileAccess.Write);
        await workerOut.WriteAsync(new byte[100]);
        await workerOut.FlushAsync();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        Assert.That(await failed.Task.WaitAsync(TimeSpan.FromSeconds(10)), Is.EqualTo("reading message: timed out after 100 of 280 bytes"));
        Assert.That(sw.Elapsed, Is.GreaterThan(TimeSpan.FromSeconds(1.5)));
    }

    [Test]
    public async Task With_200_idle_links_a_reply_on_the_last_one_arrives_at_once()
    {
        // The runtime's pipe streams blocked a pool thread per FIFO read: with 200 channels the reads queued behind
        // each other, and replies (PAUSE_RSP, CLOSE_RSP) waited seconds for the pool to grow. Links now wait in the
        // poller's one epoll_wait, so no idle channel holds up another.
        using var dir = new TempDir();
        using var poller = new FifoPoller();
        var links = new List<WorkerLink>();
        var received = new TaskCompletionSource<(int Minor, ControlMessage Message)>();
        try
        {
            for (int minor = 1; minor <= 200; minor++)
            {
                var link = new WorkerLink(ControlFifos.Create(dir.Path, minor), pid: 0, minor);
                links.Add(link);
                link.Start(poller, (l, m) => received.TrySetResult((l.Minor, m)), (_, e) => received.TrySetException(new IOException(e)));
            }
            await using (var workerOut = new FileStream(links[^1].ReadFifo, FileMode.Open, FileAccess.Write))
            {
                var record = new byte[ControlMessage.Size];
                ControlMessage.Simple(ControlMessageType.CloseResponse, 200).WriteTo(record);
                await workerOut.WriteAsync(record);
            }
            var sw = System.Diagnostics.Stopwatch.StartNew();
            var (minorSeen, message) = await received.Task.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.That((minorSeen, message), Is.EqualTo((200, ControlMessage.Simple(ControlMessageType.CloseResponse, 200))));
            Assert.That(sw.Elapsed, Is.LessThan(TimeSpan.FromSeconds(1)), "delivered without waiting for threads");
        }
        finally
        {
            foreach (var link in links) link.Dispose();
        }
        Assert.That(Directory.GetFiles(dir.Path), Is.Empty, "every FIFO unlinked");
    }
}
