using System.Globalization;
using System.Runtime.CompilerServices;

namespace BlkTapCtrl.Worker.Logging;

/// <summary>
/// Formats a <see cref="WorkerLog"/> line — <c>function: message</c>, or <c>ERROR: errno E at function: message</c> —
/// straight from the caller's interpolated string into a reused per-thread buffer: a datapath error line allocates
/// nothing, and a line nobody would receive (no sink, level off) is not formatted at all. Lines are cut at
/// <see cref="WorkerLog.MaxLineChars"/> like the original's 1024-byte tlog lines.
/// </summary>
[InterpolatedStringHandler]
public ref struct LogLineHandler
{
    // One buffer per thread, taken while a line is built: a sink that logs again (nested) gets a fresh one.
    [ThreadStatic] private static char[]? t_spare;

    private char[]? _buffer;
    private int _length;

    /// <summary>Error lines: formatted when any sink is set.</summary>
    public LogLineHandler(int literalLength, int formattedCount, WorkerLog log, int errno, string function, out bool enabled)
    {
        this = default;
        enabled = log.ErrorSink != null || log.Sink != null;
        if (!enabled) return;
        Start();
        AppendLiteral("ERROR: errno ");
        AppendFormatted(Math.Abs(errno));
        AppendLiteral(" at ");
        AppendLiteral(function);
        AppendLiteral(": ");
    }

    /// <summary>Lines at a level: formatted when the level is on and a sink is set.</summary>
    public LogLineHandler(int literalLength, int formattedCount, WorkerLog log, WorkerLog.Level level, string function, out bool enabled)
    {
        this = default;
        enabled = level <= log.Threshold && log.Sink != null;
        if (!enabled) return;
        Start();
        AppendLiteral(function);
        AppendLiteral(": ");
    }

    /// <summary>An empty line in the thread's buffer, for messages that arrive as plain strings.</summary>
    internal static LogLineHandler Begin()
    {
        var h = new LogLineHandler();
        h.Start();
        return h;
    }

    /// <summary>The line built so far.</summary>
    public readonly ReadOnlySpan<char> Text => _buffer.AsSpan(0, _length);

    public void AppendLiteral(string s) => AppendFormatted(s.AsSpan());

    public void AppendFormatted(ReadOnlySpan<char> s)
    {
        if (_buffer == null) return;
        int n = Math.Min(s.Length, _buffer.Length - _length);
        s[..n].CopyTo(_buffer.AsSpan(_length));
        _length += n;
    }

    public void AppendFormatted(string? s) => AppendFormatted(s.AsSpan());

    public void AppendFormatted<T>(T value) => AppendFormatted(value, format: null);

    // The integers log lines carry, without the generic path: no boxing even in unoptimised (Debug) code. Both
    // arities are spelled out: with an optional format the compiler would prefer the generic AppendFormatted<T>(T).
    public void AppendFormatted(int value) => AppendSpanFormattable(value, null);
    public void AppendFormatted(int value, string? format) => AppendSpanFormattable(value, format);
    public void AppendFormatted(long value) => AppendSpanFormattable(value, null);
    public void AppendFormatted(long value, string? format) => AppendSpanFormattable(value, format);
    public void AppendFormatted(uint value) => AppendSpanFormattable(value, null);
    public void AppendFormatted(uint value, string? format) => AppendSpanFormattable(value, format);
    public void AppendFormatted(ulong value) => AppendSpanFormattable(value, null);
    public void AppendFormatted(ulong value, string? format) => AppendSpanFormattable(value, format);
    public void AppendFormatted(ushort value) => AppendSpanFormattable(value, null);
    public void AppendFormatted(ushort value, string? format) => AppendSpanFormattable(value, format);

    private void AppendSpanFormattable<T>(T value, string? format) where T : ISpanFormattable
    {
        if (_buffer == null) return;
        if (value.TryFormat(_buffer.AsSpan(_length), out int written, format, CultureInfo.InvariantCulture))
            _length += written;
        else
            _length = _buffer.Length;
    }

    public void AppendFormatted<T>(T value, string? format)
    {
        if (_buffer == null) return;
        if (value is ISpanFormattable)
        {
            // The cast on the value itself (not a pattern variable) lets the JIT call it without boxing a struct;
            // enums still box (their formatting lives on System.Enum), so hot paths log enum names as strings.
            if (((ISpanFormattable)value).TryFormat(_buffer.AsSpan(_length), out int written, format, CultureInfo.InvariantCulture))
                _length += written;
            else
                _length = _buffer.Length;   // does not fit: the line is cut here
            return;
        }
        AppendFormatted(value is IFormattable g ? g.ToString(format, CultureInfo.InvariantCulture) : value?.ToString());
    }

    public void AppendFormatted<T>(T value, int alignment) => AppendFormatted(value, alignment, format: null);

    public void AppendFormatted<T>(T value, int alignment, string? format)
    {
        if (_buffer == null) return;
        int start = _length;
        AppendFormatted(value, format);
        int width = Math.Abs(alignment), written = _length - start;
        if (written >= width) return;
        int pad = Math.Min(width - written, _buffer.Length - _length);
        if (alignment > 0)
        {
            // Right-aligned: move the value right and pad in front.
            _buffer.AsSpan(start, written).CopyTo(_buffer.AsSpan(start + pad));
            _buffer.AsSpan(start, pad).Fill(' ');
        }
        else
        {
            _buffer.AsSpan(_length, pad).Fill(' ');
        }
        _length += pad;
    }

    private void Start()
    {
        _buffer = t_spare ?? new char[WorkerLog.MaxLineChars];
        t_spare = null;
        _length = 0;
    }

    /// <summary>Gives the buffer back to the thread once the sinks have the line.</summary>
    internal void Release()
    {
        if (_buffer != null) t_spare = _buffer;
        _buffer = null;
    }
}
