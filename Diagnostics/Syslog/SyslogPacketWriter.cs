using System.Globalization;
using System.Text;
using System.Text.Unicode;
using BlkTapCtrl.Diagnostics.Text;

namespace BlkTapCtrl.Diagnostics.Syslog;

/// <summary>
/// Formats one syslog datagram into a caller's buffer, truncating the text (on a character boundary) so the
/// packet never exceeds <see cref="MaxPacketBytes"/>. Allocation-free: the constant parts are encoded once.
/// </summary>
public sealed class SyslogPacketWriter
{
    /// <summary>RFC 3164 §4.1: the total length of a packet must be 1024 bytes or less.</summary>
    public const int MaxPacketBytes = 1024;

    private readonly SyslogPacketFormat _format;
    private readonly SyslogFacility _facility;
    private readonly byte[] _identTail;   // "IDENT[pid]: " (3164) or " HOST IDENT PID - - " (5424)

    public SyslogPacketWriter(SyslogPacketFormat format, SyslogFacility facility, string ident, int processId)
    {
        if (string.IsNullOrWhiteSpace(ident) || ident.Length > 48)
            throw new ArgumentException($"syslog ident '{ident}' must be 1..48 characters", nameof(ident));
        _format = format;
        _facility = facility;
        _identTail = format == SyslogPacketFormat.Rfc3164
            ? Encoding.UTF8.GetBytes($"{ident}[{processId.ToString(CultureInfo.InvariantCulture)}]: ")
            : Encoding.UTF8.GetBytes($" {HostName()} {ident} {processId.ToString(CultureInfo.InvariantCulture)} - - ");
    }

    /// <summary>Writes the packet for <paramref name="text"/> logged at <paramref name="localTime"/>; returns its length.</summary>
    public int Write(Span<byte> dest, SyslogSeverity severity, DateTimeOffset localTime, ReadOnlySpan<char> text)
    {
        dest = dest[..Math.Min(dest.Length, MaxPacketBytes)];
        int n = WriteHeader(dest, severity, localTime);
        // DestinationTooSmall still reports how much fitted, ending on a whole character: that is the truncation.
        Utf8.FromUtf16(text, dest[n..], out _, out int w, replaceInvalidSequences: true, isFinalBlock: true);
        return n + w;
    }

    /// <summary>
    /// <see cref="Write"/> for text already in UTF-8 (e.g. the log file's copy of the same line); a text too long
    /// for the packet is cut before the character that does not fit whole.
    /// </summary>
    public int WriteUtf8(Span<byte> dest, SyslogSeverity severity, DateTimeOffset localTime, ReadOnlySpan<byte> utf8Text)
    {
        dest = dest[..Math.Min(dest.Length, MaxPacketBytes)];
        int n = WriteHeader(dest, severity, localTime);
        int take = Math.Min(utf8Text.Length, dest.Length - n);
        if (take < utf8Text.Length)
        {
            // Back up over continuation bytes (10xxxxxx) to the start of the character that was cut.
            while (take > 0 && (utf8Text[take] & 0xC0) == 0x80)
                take--;
        }
        utf8Text[..take].CopyTo(dest[n..]);
        return n + take;
    }

    private int WriteHeader(Span<byte> dest, SyslogSeverity severity, DateTimeOffset localTime)
    {
        int n = 0;
        dest[n++] = (byte)'<';
        ((int)_facility * 8 + (int)severity).TryFormat(dest[n..], out int w, default, CultureInfo.InvariantCulture);
        n += w;
        dest[n++] = (byte)'>';
        if (_format == SyslogPacketFormat.Rfc3164)
        {
            n += AsciiTime.WriteMonthDayTime(dest[n..], localTime.DateTime);
            dest[n++] = (byte)' ';
        }
        else
        {
            dest[n++] = (byte)'1';
            dest[n++] = (byte)' ';
            localTime.TryFormat(dest[n..], out w, "yyyy-MM-dd'T'HH:mm:ss.ffffffzzz", CultureInfo.InvariantCulture);
            n += w;
        }
        _identTail.CopyTo(dest[n..]);
        return n + _identTail.Length;
    }

    private static string HostName()
    {
        var name = Environment.MachineName;
        return string.IsNullOrEmpty(name) ? "-" : name;
    }
}
