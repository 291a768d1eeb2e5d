using Serilog.Events;
using Serilog.Parsing;

namespace BlkTapCtrl.Diagnostics.Serilog;

/// <summary>
/// Renders a Serilog event into the line tapdisk writes: <c>origin: message</c>, or for errors
/// <c>ERROR: errno E at origin: message</c> (§3.8 tlog_error). The origin is the event's <c>Function</c>
/// property, else the last segment of its <c>SourceContext</c>; the errno is its <c>Errno</c> property.
/// One instance reuses its buffers; callers serialise access.
/// </summary>
public sealed class EventText
{
    /// <summary>Property naming the errno of a failure (positive, 0 when the VBD layer failed it itself).</summary>
    public const string ErrnoProperty = "Errno";

    /// <summary>Property naming the function or component the line is about.</summary>
    public const string FunctionProperty = "Function";

    private readonly StringWriter _writer = new(System.Globalization.CultureInfo.InvariantCulture);
    private char[] _chars = new char[1024];

    /// <summary>The rendered line, valid until the next call.</summary>
    public ReadOnlySpan<char> Render(LogEvent logEvent, bool asError)
    {
        var sb = _writer.GetStringBuilder();
        sb.Clear();
        if (asError)
        {
            _writer.Write("ERROR: errno ");
            _writer.Write(Errno(logEvent) ?? 0);
            _writer.Write(" at ");
        }
        WriteOrigin(logEvent);
        _writer.Write(": ");
        RenderLiteral(logEvent);
        if (logEvent.Exception is { } ex)
        {
            _writer.Write(": ");
            _writer.Write(ex.Message);
        }
        if (_chars.Length < sb.Length)
            _chars = new char[sb.Length];
        sb.CopyTo(0, _chars, sb.Length);
        return _chars.AsSpan(0, sb.Length);
    }

    /// <summary>The event's origin as a string (for error buckets, which keep it).</summary>
    public static string Origin(LogEvent logEvent)
    {
        if (logEvent.Properties.TryGetValue(FunctionProperty, out var f) && f is ScalarValue { Value: string fs })
            return fs;
        if (logEvent.Properties.TryGetValue("SourceContext", out var c) && c is ScalarValue { Value: string cs })
        {
            int dot = cs.LastIndexOf('.');
            return dot >= 0 ? cs[(dot + 1)..] : cs;
        }
        return "tapdisk";
    }

    /// <summary>The event's errno property, if it has one.</summary>
    public static int? Errno(LogEvent logEvent) =>
        logEvent.Properties.TryGetValue(ErrnoProperty, out var v) && v is ScalarValue sv
            ? sv.Value switch
            {
                int i => Math.Abs(i),
                long l => (int)Math.Abs(l),
                _ => null,
            }
            : null;

    /// <summary>
    /// The message with string values as they are (Serilog's default quotes them, which reads wrongly in a log
    /// line: <c>watching "/local/…"</c>); other values render as Serilog renders them.
    /// </summary>
    private void RenderLiteral(LogEvent logEvent)
    {
        foreach (var token in logEvent.MessageTemplate.Tokens)
        {
            if (token is PropertyToken p && p.Format == null && logEvent.Properties.TryGetValue(p.PropertyName, out var value)
                && value is ScalarValue { Value: string text })
                _writer.Write(text);
            else
                token.Render(logEvent.Properties, _writer, _writer.FormatProvider);
        }
    }

    private void WriteOrigin(LogEvent logEvent)
    {
        if (logEvent.Properties.TryGetValue(FunctionProperty, out var f) && f is ScalarValue { Value: string fs })
            _writer.Write(fs);
        else if (logEvent.Properties.TryGetValue("SourceContext", out var c) && c is ScalarValue { Value: string cs })
            _writer.Write(cs.AsSpan(cs.LastIndexOf('.') + 1));
        else
            _writer.Write("tapdisk");
    }
}
