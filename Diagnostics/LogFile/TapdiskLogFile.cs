using System.Globalization;
using System.Text.Unicode;
using BlkTapCtrl.Diagnostics.Errors;
using BlkTapCtrl.Diagnostics.Syslog;
using BlkTapCtrl.Diagnostics.Text;

namespace BlkTapCtrl.Diagnostics.LogFile;

/// <summary>
/// tapdisk's own log (§3.8 tlog): <c>TAPDISK.&lt;pid&gt;.tmp</c> in the log directory, written through a 16 KiB
/// buffer (line by line at <see cref="TlogLevel.Debug"/>), lines <c>Mmm dd HH:MM:SS: [HH:MM:SS.mmm] text</c>.
/// Errors (<see cref="Error"/>) go to the file and to syslog at once and are counted (CA-34846: no
/// de-duplication, every terminal error reported immediately); they also feed the error buckets.
/// The file is kept (renamed <c>.log</c>) when it is made precious (debug dump, watchdog) or saw errors, and
/// deleted on close otherwise, so healthy VBDs leave nothing behind.
/// </summary>
public sealed class TapdiskLogFile : IDisposable
{
    public const int BufferBytes = 16 * 1024;
    public const int MaxLineBytes = 1024;

    private readonly Lock _gate = new();
    private readonly Microsoft.Win32.SafeHandles.SafeFileHandle _file;
    private long _written; // where the next flush writes (the file is ours alone: pwrite at our own offset)
    // Not zeroed: only the buffered prefix is ever written out, and a quiet worker never touches most of it.
    private readonly byte[] _buffer = GC.AllocateUninitializedArray<byte>(BufferBytes);
    private readonly byte[] _line = new byte[MaxLineBytes];
    private readonly char[] _errorText = new char[MaxLineBytes];
    private readonly SyslogClient? _syslog;
    private readonly TimeProvider _clock;
    private int _buffered;
    private bool _closed;

    public TapdiskLogFile(string directory, int processId, TlogLevel level, SyslogClient? syslog,
        TimeProvider? clock = null, ErrorBuckets? buckets = null)
    {
        Directory.CreateDirectory(directory);
        TemporaryPath = Path.Combine(directory, $"TAPDISK.{processId.ToString(CultureInfo.InvariantCulture)}.tmp");
        SavedPath = Path.ChangeExtension(TemporaryPath, ".log");
        Level = level;
        _syslog = syslog;
        _clock = clock ?? TimeProvider.System;
        Buckets = buckets ?? new ErrorBuckets();
        // A bare handle, not a FileStream: the stream's constructor costs the worker's start → PID_RSP a first look-up
        // of AppContext switches (its serialization guard) and buffers nothing we need.
        _file = File.OpenHandle(TemporaryPath, FileMode.Create, FileAccess.Write, FileShare.ReadWrite);
    }

    /// <summary>
    /// Set by an owner whose event loop calls <see cref="SyslogClient.Flush"/> at the end of every pass (the worker):
    /// error lines are then queued for that flush (<see cref="SyslogClient.LogDeferred"/>) instead of each costing a
    /// send of its own on the datapath.
    /// </summary>
    public bool SyslogFlushedByLoop { get; set; }

    public string TemporaryPath { get; }

    public string SavedPath { get; }

    /// <summary>Where the file is now: <see cref="SavedPath"/> once precious, else <see cref="TemporaryPath"/>.</summary>
    public string CurrentPath => IsPrecious ? SavedPath : TemporaryPath;

    public TlogLevel Level { get; set; }

    public bool IsPrecious { get; private set; }

    /// <summary>Errors logged so far; any error keeps the file.</summary>
    public long Errors { get; private set; }

    public ErrorBuckets Buckets { get; }

    /// <summary>Writes <c>origin: message</c> when <paramref name="level"/> is enabled.</summary>
    public void Write(TlogLevel level, ReadOnlySpan<char> origin, ReadOnlySpan<char> message)
    {
        if (level > Level)
            return;
        lock (_gate)
        {
            int n = Compose(_errorText, origin, ": ", message);
            AppendLineLocked(_errorText.AsSpan(0, n));
        }
    }

    /// <summary>Writes an already rendered line (the Serilog sink's path) when <paramref name="level"/> is enabled.</summary>
    public void WriteLine(TlogLevel level, ReadOnlySpan<char> text)
    {
        if (level > Level)
            return;
        lock (_gate)
            AppendLineLocked(text);
    }

    /// <summary>
    /// tlog_error: <c>ERROR: errno E at origin: message</c> to the file and, at once, to syslog at LOG_ERR;
    /// counts the error and adds it to its bucket. <paramref name="errno"/> is positive (0 = not a system error).
    /// </summary>
    public void Error(int errno, ReadOnlySpan<char> origin, ReadOnlySpan<char> message)
    {
        lock (_gate)
        {
            Span<char> prefix = stackalloc char[40];
            prefix.TryWrite(CultureInfo.InvariantCulture, $"ERROR: errno {Math.Abs(errno)} at ", out int p);
            int n = Compose(_errorText, prefix[..p], origin, ": ", message);
            ErrorLineLocked(errno, origin, _errorText.AsSpan(0, n));
        }
    }

    /// <summary>The Serilog sink's error path: <paramref name="text"/> is already <c>ERROR: errno E at origin: …</c>.</summary>
    public void ErrorLine(int errno, ReadOnlySpan<char> origin, ReadOnlySpan<char> text)
    {
        lock (_gate)
            ErrorLineLocked(errno, origin, text);
    }

    /// <summary>
    /// Keeps the file whatever happens: the first call flushes and renames it to <c>.log</c> and tells syslog
    /// (<c>logfile saved to PATH: ERR</c>). Called on SIGUSR1 and watchdog dumps.
    /// </summary>
    public void MakePrecious()
    {
        lock (_gate)
        {
            if (IsPrecious || _closed)
                return;
            FlushLocked();
            int err = 0;
            try
            {
                File.Move(TemporaryPath, SavedPath, overwrite: true);
                IsPrecious = true;
            }
            catch (IOException e)
            {
                err = e.HResult & 0xFFFF;
            }
            catch (UnauthorizedAccessException)
            {
                err = 13; // EACCES
            }
            Span<char> text = stackalloc char[MaxLineBytes];
            text.TryWrite(CultureInfo.InvariantCulture, $"logfile saved to {SavedPath}: {err}", out int n);
            _syslog?.Log(err == 0 ? SyslogSeverity.Informational : SyslogSeverity.Warning, text[..n]);
        }
    }

    /// <summary>
    /// True while lines wait in the buffer: the worker's loop then arms a timer that flushes them (so a line reaches
    /// the disk within a second at most, yet a burst of errors costs one write()). Read without the lock: a stale
    /// answer only moves the flush by one pass.
    /// </summary>
    public bool HasBufferedLines => Volatile.Read(ref _buffered) > 0;

    public void Flush()
    {
        lock (_gate)
            FlushLocked();
    }

    /// <summary>
    /// Writes the error-bucket report, flushes, and keeps the file (as <c>.log</c>) if it is precious or saw
    /// errors, else deletes it. Returns the kept file's path, or null when it was deleted.
    /// </summary>
    public string? Close()
    {
        lock (_gate)
        {
            if (_closed)
                return IsPrecious || Errors > 0 ? SavedPath : null;
            foreach (var line in Buckets.Report(_clock.LocalTimeZone))
                AppendLineLocked(line);
            FlushLocked();
            _file.Dispose();
            _closed = true;
            if (IsPrecious)
                return SavedPath;
            if (Errors > 0)
            {
                File.Move(TemporaryPath, SavedPath, overwrite: true);
                return SavedPath;
            }
            File.Delete(TemporaryPath);
            return null;
        }
    }

    public void Dispose() => Close();

    private void ErrorLineLocked(int errno, ReadOnlySpan<char> origin, ReadOnlySpan<char> text)
    {
        Errors++;
        // One clock read stamps the file line, the syslog packet and the bucket; the syslog packet reuses the
        // line's UTF-8 instead of encoding the text again.
        var utc = _clock.GetUtcNow();
        var local = utc.ToOffset(_clock.LocalTimeZone.GetUtcOffset(utc));
        var utf8 = AppendLineLocked(text, local.DateTime);
        if (_syslog != null)
        {
            if (SyslogFlushedByLoop) _syslog.LogDeferredUtf8(SyslogSeverity.Error, utf8, local);
            else _syslog.LogUtf8(SyslogSeverity.Error, utf8, local);
        }
        Buckets.Add(errno, origin, text, Timeval.FromDateTimeOffset(utc));
    }

    private void AppendLineLocked(ReadOnlySpan<char> text) => AppendLineLocked(text, _clock.GetLocalNow().DateTime);

    /// <summary>Formats the line and buffers it (unless closed); returns the text's UTF-8 inside the line.</summary>
    private ReadOnlySpan<byte> AppendLineLocked(ReadOnlySpan<char> text, DateTime now)
    {
        var line = _line.AsSpan();
        int n = AsciiTime.WriteMonthDayTime(line, now);
        line[n++] = (byte)':';
        line[n++] = (byte)' ';
        line[n++] = (byte)'[';
        n += AsciiTime.WriteTimeMillis(line[n..], now);
        line[n++] = (byte)']';
        line[n++] = (byte)' ';
        int textStart = n;
        // Leave room for the newline; a long text is cut on a character boundary.
        Utf8.FromUtf16(text, line[n..^1], out _, out int w, replaceInvalidSequences: true, isFinalBlock: true);
        n += w;
        line[n++] = (byte)'\n';
        if (_closed)
            return line[textStart..(n - 1)];

        if (_buffered + n > _buffer.Length)
            FlushLocked();
        line[..n].CopyTo(_buffer.AsSpan(_buffered));
        _buffered += n;
        if (Level >= TlogLevel.Debug)
            FlushLocked();
        return line[textStart..(n - 1)];
    }

    private void FlushLocked()
    {
        if (_buffered == 0 || _closed)
            return;
        RandomAccess.Write(_file, _buffer.AsSpan(0, _buffered), _written);
        _written += _buffered;
        _buffered = 0;
    }

    private static int Compose(Span<char> dest, ReadOnlySpan<char> a, ReadOnlySpan<char> b, ReadOnlySpan<char> c,
        ReadOnlySpan<char> d = default)
    {
        int n = Append(dest, 0, a);
        n = Append(dest, n, b);
        n = Append(dest, n, c);
        return Append(dest, n, d);
    }

    private static int Append(Span<char> dest, int at, ReadOnlySpan<char> part)
    {
        int take = Math.Min(part.Length, dest.Length - at);
        part[..take].CopyTo(dest[at..]);
        return at + take;
    }
}
