using BlkTapCtrl.Worker.Logging;

namespace BlkTapCtrl.Worker.Tests.Logging;

/// <summary>The worker's log front: lines built in a reused buffer, nothing formatted for nobody.</summary>
public sealed class WorkerLogTests
{
    /// <summary>A value that counts how often it is formatted.</summary>
    private sealed class Counted : ISpanFormattable
    {
        public int Formatted;

        public string ToString(string? format, IFormatProvider? provider) { Formatted++; return "counted"; }

        public bool TryFormat(Span<char> destination, out int charsWritten, ReadOnlySpan<char> format, IFormatProvider? provider)
        {
            Formatted++;
            charsWritten = 0;
            return "counted".AsSpan().TryCopyTo(destination) && (charsWritten = 7) > 0;
        }
    }

    [Test]
    public void Error_and_level_lines_have_the_tlog_shapes()
    {
        var lines = new List<(WorkerLog.Level, string)>();
        var errors = new List<(int, string, string)>();
        var log = new WorkerLog { Threshold = WorkerLog.Level.Info, Sink = (l, line) => lines.Add((l, line.ToString())) };
        ulong sector = 0x1234;
        log.Info("tapdisk_vbd_open", $"opened {"vhd:/x"} ({16:D3} secs, {sector:x})");
        log.Warn("f", "plain text");
        log.Write(WorkerLog.Level.Debug, "f", $"below the threshold {sector}");
        log.Error(-28, "tapdisk_vbd_complete_td_request", $"req {7}: write 0x{8:x} secs to 0x{sector:x}");
        log.ErrorSink = (errno, function, line) => errors.Add((errno, function, line.ToString()));
        log.Error(5, "g", "plain error");
        log.Error(5, "g", $"[{3,4}|{"ab",-4}|{0.5,6:0.00}]");

        Assert.That(lines, Is.EqualTo(new[]
        {
            (WorkerLog.Level.Info, "tapdisk_vbd_open: opened vhd:/x (016 secs, 1234)"),
            (WorkerLog.Level.Warn, "f: plain text"),
            (WorkerLog.Level.Warn, "ERROR: errno 28 at tapdisk_vbd_complete_td_request: req 7: write 0x8 secs to 0x1234"),
        }));
        Assert.That(errors, Is.EqualTo(new[]
        {
            (5, "g", "ERROR: errno 5 at g: plain error"),
            (5, "g", "ERROR: errno 5 at g: [   3|ab  |  0.50]"),
        }));
        Assert.That(log.ErrorCount, Is.EqualTo(3));
    }

    [Test]
    public void A_line_no_sink_takes_is_never_formatted_but_errors_are_still_counted()
    {
        var value = new Counted();
        var log = new WorkerLog { Threshold = WorkerLog.Level.Warn, Sink = null };
        log.Error(5, "f", $"{value}");
        log.Warn("f", $"{value}");
        Assert.That((value.Formatted, log.ErrorCount), Is.EqualTo((0, 1L)));

        int received = 0;
        log.Sink = (_, _) => received++;
        log.Info("f", $"{value}");                                  // INFO is off
        log.Write(WorkerLog.Level.Debug, "f", $"{value}");          // DEBUG is off
        Assert.That((value.Formatted, received), Is.EqualTo((0, 0)));
        log.Warn("f", $"{value}");
        Assert.That((value.Formatted, received), Is.EqualTo((1, 1)));
    }

    [Test]
    public void A_datapath_error_line_allocates_nothing()
    {
        int seen = 0;
        var log = new WorkerLog { Sink = null, ErrorSink = (_, _, line) => seen += line.Length };
        ulong sector = 0;
        for (int i = 0; i < 1000; i++) ErrorLine(log, ref sector);   // first use of the thread's buffer, JIT
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++) ErrorLine(log, ref sector);
        Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.Zero);
        Assert.That(seen, Is.GreaterThan(0));
    }

    private static void ErrorLine(WorkerLog log, ref ulong sector)
    {
        sector += 8;
        log.Error(28, "tapdisk_vbd_make_response",
            $"returning BLKIF_RSP -1 for req {(int)(sector % 32)} ({"write"} 0x{8L:x} secs at 0x{sector:x}, {0} retries)");
    }

    [Test]
    public void Long_lines_are_cut_and_a_sink_that_logs_again_gets_its_own_buffer()
    {
        var lines = new List<string>();
        WorkerLog log = null!;
        log = new WorkerLog
        {
            Sink = (_, line) =>
            {
                if (line.StartsWith("outer")) log.Warn("inner", $"nested {42}");
                lines.Add(line.ToString());   // after the nested call: the outer span must be intact
            },
        };
        log.Warn("outer", $"{new string('x', 2000)}");
        Assert.That(lines, Has.Count.EqualTo(2));
        Assert.That(lines[0], Is.EqualTo("inner: nested 42"));
        Assert.That(lines[1], Has.Length.EqualTo(WorkerLog.MaxLineChars));
        Assert.That(lines[1], Does.StartWith("outer: xxxx"));
    }
}
