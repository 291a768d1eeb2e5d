using BlkTapCtrl.Testing;
using BlkTapCtrl.Worker.Interop;
using BlkTapCtrl.Worker.IO;
using BlkTapCtrl.Worker.Scheduling;
using BlkTapCtrl.Worker.Tests.Support;

namespace BlkTapCtrl.Worker.Tests.IO;

/// <summary>The io_uring backend on real files, buffered and O_DIRECT: the same queue contract as lio and rwio.</summary>
[TestFixture]
public class IoUringQueueTests
{
    [OneTimeSetUp]
    public void RequireIoUring()
    {
        // Not a skip in disguise: CI's kernel has io_uring; a machine without it must say so loudly.
        Assert.That(IoUringQueue.IsSupported(), Is.True, "io_uring_setup failed on this kernel (disabled by sysctl kernel.io_uring_disabled?)");
    }

    private static void RunUntil(EventLoop loop, IoQueue queue, Func<bool> done)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!done() && DateTime.UtcNow < deadline)
        {
            queue.Submit();
            loop.SetMaxTimeout(100_000);
            loop.WaitForEvents();
        }
        Assert.That(done(), Is.True, "completions did not arrive within 10 s");
    }

    [TestCase(false)]
    [TestCase(true)]
    public void Writes_flush_and_reads_round_trip_merged_and_unmerged(bool direct)
    {
        using var dir = new TempDir();
        string path = dir["f"];
        File.WriteAllBytes(path, new byte[1 << 20]);
        const int O_RDWR = 2, O_DIRECT = 0x4000, O_CLOEXEC = 0x80000;
        int fd = Open(path, O_RDWR | O_CLOEXEC | (direct ? O_DIRECT : 0), 0);
        Assert.That(fd, Is.GreaterThanOrEqualTo(0), Errno.Name(System.Runtime.InteropServices.Marshal.GetLastPInvokeError()));
        try
        {
            using var loop = new EventLoop();
            using var queue = new IoUringQueue(loop, 64);
            using var buf = new AlignedBuffer(256 << 10);
            for (int i = 0; i < buf.Span.Length; i++) buf.Span[i] = (byte)(i * 7 / 4096 + 1);
            var results = new IoResults();
            // 16 adjacent 4 KiB writes (merged into one) and 8 scattered ones, then a flush.
            for (int i = 0; i < 16; i++) Enqueue(queue, fd, IoOperation.Write, buf.Pointer + i * 4096, 4096, i * 4096, results);
            for (int i = 0; i < 8; i++) Enqueue(queue, fd, IoOperation.Write, buf.Pointer + (32 + i) * 4096, 4096, (64 + 2 * i) * 4096L, results);
            RunUntil(loop, queue, () => results.Done.Count == 24);
            Enqueue(queue, fd, IoOperation.FlushData, 0, 0, 0, results);
            RunUntil(loop, queue, () => results.Done.Count == 25);
            Assert.That(results.Done.Select(d => d.Result), Is.All.Zero);
            Assert.That(queue.MergedCount, Is.GreaterThanOrEqualTo(15));

            var disk = File.ReadAllBytes(path);
            Assert.That(disk.AsSpan(0, 65536).SequenceEqual(buf.Span[..65536]), Is.True);
            for (int i = 0; i < 8; i++)
                Assert.That(disk.AsSpan((64 + 2 * i) * 4096, 4096).SequenceEqual(buf.Span.Slice((32 + i) * 4096, 4096)), Is.True, $"scattered write {i}");

            // Read it all back through the ring into the second half of the buffer.
            using var back = new AlignedBuffer(65536);
            Enqueue(queue, fd, IoOperation.Read, back.Pointer, 65536, 0, results);
            RunUntil(loop, queue, () => results.Done.Count == 26);
            Assert.That(results.Done[^1].Result, Is.Zero);
            Assert.That(back.Span.SequenceEqual(buf.Span[..65536]), Is.True);
            Assert.That(queue.IsIdle, Is.True);
        }
        finally
        {
            Close(fd);
        }
    }

    [Test]
    public void Defers_beyond_capacity_and_completes_everything_through_the_eventfd()
    {
        using var dir = new TempDir();
        var content = new byte[64 * 512];
        for (int i = 0; i < content.Length; i++) content[i] = (byte)(i / 512 * 3);
        File.WriteAllBytes(dir["f"], content);
        using var handle = File.OpenHandle(dir["f"], FileMode.Open, FileAccess.ReadWrite);
        int fd = (int)handle.DangerousGetHandle();
        using var loop = new EventLoop();
        using var queue = new IoUringQueue(loop, 4);
        using var buf = new AlignedBuffer(64 * 4096);
        var results = new IoResults();
        for (int i = 0; i < 10; i++)
            Enqueue(queue, fd, IoOperation.Read, buf.Pointer + i * 4096, 512, i * 2 * 512, results);
        Assert.That((queue.Queued, queue.Deferred), Is.EqualTo((4, 6)), "a full queue defers instead of failing");
        RunUntil(loop, queue, () => results.Done.Count == 10);
        Assert.That(results.Done.Select(d => d.Result), Is.All.Zero);
        for (int i = 0; i < 10; i++) Assert.That(buf.Span[i * 4096], Is.EqualTo((byte)(i * 2 * 3)));
        Assert.That(queue.IsIdle, Is.True);
    }

    [Test]
    public void A_read_past_the_end_of_the_file_ends_short_with_EIO_and_errors_pass_through()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir["f"], new byte[6144]);
        using var handle = File.OpenHandle(dir["f"], FileMode.Open, FileAccess.Read);
        int fd = (int)handle.DangerousGetHandle();
        using var loop = new EventLoop();
        using var queue = new IoUringQueue(loop, 8);
        using var buf = new AlignedBuffer(16384);
        var results = new IoResults();
        Enqueue(queue, fd, IoOperation.Read, buf.Pointer, 8192, 0, results);            // 6144 of 8192 exist
        Enqueue(queue, fd, IoOperation.Write, buf.Pointer + 8192, 512, 0, results);     // read-only fd ⇒ EBADF
        RunUntil(loop, queue, () => results.Done.Count == 2);
        var byOp = results.Done.ToDictionary(d => d.Request.Operation, d => d.Result);
        Assert.That(byOp[IoOperation.Read], Is.EqualTo(-Errno.EIO));
        Assert.That(byOp[IoOperation.Write], Is.EqualTo(-Errno.EBADF));
    }

    [Test]
    public void Dispose_waits_for_the_io_still_in_flight()
    {
        // O_DIRECT: the kernel reads the buffers while the writes are in flight and the data reaches the file only
        // when they complete. A Dispose that returned early shows as a region still zero on disk (read at once) or
        // carrying the poison written into the buffers right after Dispose returned.
        using var dir = new TempDir();
        string path = dir["f"];
        const int O_RDWR = 2, O_DIRECT = 0x4000, O_CLOEXEC = 0x80000, Chunk = 512 << 10, Writes = 32; // 16 MiB in flight
        using (var f = File.Create(path)) f.SetLength(2L * Writes * Chunk);
        int fd = Open(path, O_RDWR | O_CLOEXEC | O_DIRECT, 0);
        Assert.That(fd, Is.GreaterThanOrEqualTo(0), Errno.Name(System.Runtime.InteropServices.Marshal.GetLastPInvokeError()));
        try
        {
            using var loop = new EventLoop();
            var queue = new IoUringQueue(loop, Writes);
            using var buf = new AlignedBuffer(Writes * Chunk);
            for (int i = 0; i < Writes; i++) buf.Span.Slice(i * Chunk, Chunk).Fill((byte)(i + 1));
            var results = new IoResults();
            for (int i = 0; i < Writes; i++)
                Enqueue(queue, fd, IoOperation.Write, buf.Pointer + i * Chunk, Chunk, i * 2L * Chunk, results);
            queue.Submit();
            queue.Dispose(); // returns only once the kernel is done with the buffers
            buf.Span.Fill(0xEE);
            var disk = File.ReadAllBytes(path);

            Assert.That(results.Done, Is.Empty, "torn down: no completion callbacks");
            for (int i = 0; i < Writes; i++)
            {
                var region = disk.AsSpan(i * 2 * Chunk, Chunk);
                int wrong = region.IndexOfAnyExcept((byte)(i + 1));
                Assert.That(wrong, Is.EqualTo(-1), $"write {i} was not complete when Dispose returned: byte {wrong} is 0x{(wrong < 0 ? 0 : region[wrong]):x2}");
                Assert.That(disk.AsSpan(i * 2 * Chunk + Chunk, Chunk).IndexOfAnyExcept((byte)0), Is.EqualTo(-1), "the gaps stay untouched");
            }
        }
        finally
        {
            Close(fd);
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "open", SetLastError = true)]
    private static extern int Open(string path, int flags, int mode);

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "close")]
    private static extern int Close(int fd);

    private static void Enqueue(IoQueue queue, int fd, IoOperation op, nint buffer, int length, long offset, IIoCompletion done)
    {
        var r = new IoRequest();
        r.Set(fd, op, buffer, length, offset, done);
        queue.Enqueue(r);
    }
}
