using BlkTapCtrl.Testing;
using BlkTapCtrl.Worker.Interop;
using BlkTapCtrl.Worker.IO;
using BlkTapCtrl.Worker.Logging;
using BlkTapCtrl.Worker.Scheduling;
using BlkTapCtrl.Worker.Tests.Support;

namespace BlkTapCtrl.Worker.Tests.IO;

/// <summary>The tio queue of §3.7 on real files: merging, splitting results, deferral, both backends.</summary>
[TestFixture]
public class IoQueueTests
{
    private static int OpenFile(string path) => File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.ReadWrite).DangerousGetHandle().ToInt32();

    [Test]
    public void Adjacent_requests_in_memory_and_on_disk_are_merged_into_one_submission_and_each_part_completes()
    {
        using var dir = new TempDir();
        using var handle = File.OpenHandle(dir["f"], FileMode.Create, FileAccess.ReadWrite);
        int fd = (int)handle.DangerousGetHandle();
        using var buf = new AlignedBuffer(16384);
        for (int i = 0; i < 16384; i++) buf.Span[i] = (byte)(i / 512);
        using var queue = new SynchronousIoQueue();
        var results = new IoResults();
        var reqs = new IoRequest[4];
        for (int i = 0; i < 3; i++)
        {
            reqs[i] = new IoRequest();
            reqs[i].Set(fd, IoOperation.Write, buf.Pointer + i * 1024, 1024, i * 1024, results);
            queue.Enqueue(reqs[i]);
        }
        reqs[3] = new IoRequest();
        reqs[3].Set(fd, IoOperation.Write, buf.Pointer + 8192, 512, 8192, results); // not adjacent
        queue.Enqueue(reqs[3]);
        queue.Submit();
        Assert.That(queue.SubmittedCount, Is.EqualTo(2));
        Assert.That(queue.MergedCount, Is.EqualTo(2));
        Assert.That(results.Done.Select(d => d.Result), Is.EqualTo(new[] { 0, 0, 0, 0 }));
        var disk = File.ReadAllBytes(dir["f"]);
        Assert.That(disk.AsSpan(0, 3072).ToArray(), Is.EqualTo(buf.Span[..3072].ToArray()));
        Assert.That(disk[8192], Is.EqualTo(16));
    }

    [Test]
    public void A_short_merged_read_fails_every_part_with_EIO()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir["f"], new byte[1536]);
        using var handle = File.OpenHandle(dir["f"], FileMode.Open, FileAccess.ReadWrite);
        int fd = (int)handle.DangerousGetHandle();
        using var buf = new AlignedBuffer(4096);
        using var queue = new SynchronousIoQueue();
        var results = new IoResults();
        for (int i = 0; i < 4; i++)
        {
            var r = new IoRequest();
            r.Set(fd, IoOperation.Read, buf.Pointer + i * 512, 512, i * 512, results);
            queue.Enqueue(r);
        }
        queue.Submit();
        Assert.That(results.Done.Select(d => d.Result), Is.EqualTo(Enumerable.Repeat(-Errno.EIO, 4)));
    }

    [Test]
    public void Native_AIO_defers_beyond_its_capacity_and_completes_everything_through_the_eventfd()
    {
        using var dir = new TempDir();
        var content = new byte[64 * 512];
        for (int i = 0; i < content.Length; i++) content[i] = (byte)(i / 512 * 3);
        File.WriteAllBytes(dir["f"], content);
        using var handle = File.OpenHandle(dir["f"], FileMode.Open, FileAccess.ReadWrite);
        int fd = (int)handle.DangerousGetHandle();
        using var loop = new EventLoop();
        using var queue = new LinuxAioQueue(loop, 4, new WorkerLog());
        using var buf = new AlignedBuffer(64 * 4096);
        var results = new IoResults();
        for (int i = 0; i < 10; i++)
        {
            var r = new IoRequest();
            // every other sector so nothing merges; each in its own page
            r.Set(fd, IoOperation.Read, buf.Pointer + i * 4096, 512, i * 2 * 512, results);
            queue.Enqueue(r);
        }
        Assert.That((queue.Queued, queue.Deferred), Is.EqualTo((4, 6)), "a full queue defers instead of failing");
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (results.Done.Count < 10 && DateTime.UtcNow < deadline)
        {
            queue.Submit();
            loop.SetMaxTimeout(100_000);
            loop.WaitForEvents();
        }
        Assert.That(results.Done, Has.Count.EqualTo(10));
        Assert.That(results.Done.Select(d => d.Result), Is.All.Zero);
        for (int i = 0; i < 10; i++) Assert.That(buf.Span[i * 4096], Is.EqualTo((byte)(i * 2 * 3)));
        Assert.That(queue.IsIdle, Is.True);
    }

    /// <summary>A backend whose kernel queue is full on the first submission (io_submit's EAGAIN): every run is requeued.</summary>
    private sealed class FullOnceQueue() : IoQueue(64)
    {
        public bool Full = true;
        public override string Name => "full-once";

        protected override void SubmitMerged(ref IoRequestList heads)
        {
            var taken = new List<IoRequest>();
            while (heads.Take() is { } head) taken.Add(head);
            if (Full)
                for (int i = taken.Count - 1; i >= 0; i--) Requeue(taken[i]); // last refused run first, as lio does
            else
                foreach (var head in taken) CompleteMerged(head, -Errno.EIO);
        }

        public void RefillAfterRoom() => Refill();
    }

    [Test]
    public void A_refused_merged_run_goes_back_to_the_front_of_the_deferred_fifo_in_order_and_each_part_completes_once()
    {
        var results = new IoResults();
        using var queue = new FullOnceQueue();
        var reqs = new IoRequest[4];
        for (int i = 0; i < 4; i++)
        {
            reqs[i] = new IoRequest();
            long offset = i < 3 ? i * 512 : 8192; // three adjacent parts, then one apart
            reqs[i].Set(3, IoOperation.Read, 4096 + (nint)offset, 512, offset, results);
            queue.Enqueue(reqs[i]);
        }
        queue.Submit();
        Assert.That((queue.Queued, queue.Deferred, queue.InFlight), Is.EqualTo((0, 4, 0)), "both runs requeued, parts apart again");

        queue.Full = false;
        queue.RefillAfterRoom();
        queue.Submit();
        Assert.That(queue.SubmittedCount, Is.EqualTo(4), "two runs each time");
        Assert.That(results.Done.Select(d => d.Request), Is.EqualTo(reqs), "every part once, in the order queued");
        Assert.That(results.Done.Select(d => d.Result), Has.All.EqualTo(-Errno.EIO));
        Assert.That(queue.IsIdle, Is.True);
    }
}
