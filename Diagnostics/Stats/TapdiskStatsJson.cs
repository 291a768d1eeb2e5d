using System.Text.Json;
using BlkTapCtrl.Diagnostics.Syslog;

namespace BlkTapCtrl.Diagnostics.Stats;

/// <summary>
/// Writes and reads <see cref="TapdiskStats"/> as JSON with Utf8JsonWriter/JsonDocument by hand: no reflection,
/// so it works in the NativeAOT tapdisk, and the field names below are the documented contract.
/// </summary>
public static class TapdiskStatsJson
{
    public static byte[] Serialize(TapdiskStats stats)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
            Write(w, stats);
        return buffer.ToArray();
    }

    public static void Write(Utf8JsonWriter w, TapdiskStats s)
    {
        w.WriteStartObject();
        w.WriteNumber("version", s.Version);
        w.WriteNumber("pid", s.Pid);
        w.WriteString("time", s.Time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", System.Globalization.CultureInfo.InvariantCulture));
        w.WriteStartArray("vbds");
        foreach (var v in s.Vbds)
        {
            w.WriteStartObject();
            w.WriteNumber("cookie", v.Cookie);
            w.WriteString("flags", v.Flags);
            w.WriteNumber("received", v.Received);
            w.WriteNumber("returned", v.Returned);
            w.WriteNumber("errors", v.Errors);
            w.WriteNumber("retries", v.Retries);
            w.WriteNumber("kicksIn", v.KicksIn);
            w.WriteNumber("kicksOut", v.KicksOut);
            w.WriteNumber("kicked", v.Kicked);
            w.WriteStartObject("queues");
            w.WriteNumber("new", v.New);
            w.WriteNumber("pending", v.Pending);
            w.WriteNumber("failed", v.Failed);
            w.WriteNumber("completed", v.Completed);
            w.WriteEndObject();
            w.WriteNumber("idleMicroseconds", v.IdleMicroseconds);
            w.WriteStartArray("images");
            foreach (var image in v.Images) w.WriteStringValue(image);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        if (s.Log is { } log)
        {
            w.WriteStartObject("log");
            w.WriteString("path", log.Path);
            w.WriteNumber("errors", log.Errors);
            w.WriteBoolean("precious", log.Precious);
            w.WriteEndObject();
        }
        if (s.Syslog is { } sys)
        {
            w.WriteStartObject("syslog");
            w.WriteString("socket", sys.Socket);
            w.WriteNumber("messages", sys.Counters.Messages);
            w.WriteNumber("bytes", sys.Counters.Bytes);
            w.WriteNumber("xmits", sys.Counters.Transmits);
            w.WriteNumber("failed", sys.Counters.Failed);
            w.WriteNumber("dropped", sys.Counters.Dropped);
            w.WriteNumber("queued", sys.Counters.Queued);
            w.WriteEndObject();
        }
        w.WriteStartObject("errorBuckets");
        w.WriteNumber("dropped", s.ErrorBucketsDropped);
        w.WriteStartArray("buckets");
        foreach (var b in s.ErrorBuckets)
        {
            w.WriteStartObject();
            w.WriteNumber("errno", b.Errno);
            w.WriteString("origin", b.Origin);
            w.WriteNumber("count", b.Count);
            w.WriteStartObject("first");
            w.WriteNumber("seconds", b.FirstSeconds);
            w.WriteNumber("microseconds", b.FirstMicroseconds);
            w.WriteEndObject();
            w.WriteStartObject("last");
            w.WriteNumber("seconds", b.LastSeconds);
            w.WriteNumber("microseconds", b.LastMicroseconds);
            w.WriteEndObject();
            w.WriteNumber("stdevSeconds", Math.Round(b.StdevSeconds, 6));
            w.WriteString("message", b.Message);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteStartObject("wakeups");
        w.WriteNumber("count", s.Wakeups);
        w.WriteStartArray("dump");
        foreach (var line in s.WakeupDump)
            w.WriteStringValue(line);
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteEndObject();
    }

    /// <summary>Reads a snapshot; throws <see cref="FormatException"/> naming the field that is missing or wrong.</summary>
    public static TapdiskStats Parse(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json);
        using var doc = JsonDocument.ParseValue(ref reader);
        var root = doc.RootElement;
        int version = Int(root, "version");
        if (version != TapdiskStats.CurrentVersion)
            throw new FormatException($"tapdisk stats: version {version} is not supported (expected {TapdiskStats.CurrentVersion})");
        var vbds = new List<VbdStats>();
        foreach (var v in Get(root, "vbds").EnumerateArray())
        {
            var q = Get(v, "queues");
            vbds.Add(new VbdStats
            {
                Cookie = Int(v, "cookie"), Flags = Str(v, "flags"),
                Received = Long(v, "received"), Returned = Long(v, "returned"), Errors = Long(v, "errors"),
                Retries = Long(v, "retries"), KicksIn = Long(v, "kicksIn"), KicksOut = Long(v, "kicksOut"),
                Kicked = Long(v, "kicked"), New = Int(q, "new"), Pending = Int(q, "pending"), Failed = Int(q, "failed"),
                Completed = Int(q, "completed"), IdleMicroseconds = Long(v, "idleMicroseconds"),
                // Added within version 1: a snapshot of an older worker has no "images" and reads as unknown.
                Images = v.TryGetProperty("images", out var images) ? Strings(images, "images") : [],
            });
        }
        LogFileStats? log = root.TryGetProperty("log", out var l)
            ? new LogFileStats(Str(l, "path"), Long(l, "errors"), Get(l, "precious").GetBoolean())
            : null;
        SyslogStats? syslog = root.TryGetProperty("syslog", out var sl)
            ? new SyslogStats(Str(sl, "socket"), new SyslogStatistics(Long(sl, "messages"), Long(sl, "bytes"),
                Long(sl, "xmits"), Long(sl, "failed"), Long(sl, "dropped"), Int(sl, "queued")))
            : null;
        var eb = Get(root, "errorBuckets");
        var buckets = new List<ErrorBucketStats>();
        foreach (var b in Get(eb, "buckets").EnumerateArray())
        {
            var first = Get(b, "first");
            var last = Get(b, "last");
            buckets.Add(new ErrorBucketStats(Int(b, "errno"), Str(b, "origin"), Long(b, "count"),
                Long(first, "seconds"), Int(first, "microseconds"), Long(last, "seconds"), Int(last, "microseconds"),
                Get(b, "stdevSeconds").GetDouble(), Str(b, "message")));
        }
        var wk = Get(root, "wakeups");
        return new TapdiskStats
        {
            Version = version, Pid = Int(root, "pid"),
            Time = DateTimeOffset.Parse(Str(root, "time"), System.Globalization.CultureInfo.InvariantCulture),
            Vbds = vbds, Log = log, Syslog = syslog, ErrorBuckets = buckets, ErrorBucketsDropped = Long(eb, "dropped"),
            Wakeups = Long(wk, "count"), WakeupDump = Get(wk, "dump").EnumerateArray().Select(e => e.GetString() ?? "").ToList(),
        };
    }

    private static List<string> Strings(JsonElement array, string name) =>
        array.ValueKind == JsonValueKind.Array
            ? array.EnumerateArray().Select(i => i.ValueKind == JsonValueKind.String ? i.GetString()! : throw new FormatException($"tapdisk stats: '{name}' must hold strings")).ToList()
            : throw new FormatException($"tapdisk stats: field '{name}' must be an array");

    private static JsonElement Get(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) ? v : throw new FormatException($"tapdisk stats: field '{name}' is missing");

    private static long Long(JsonElement e, string name) =>
        Get(e, name) is { ValueKind: JsonValueKind.Number } v && v.TryGetInt64(out long x)
            ? x : throw new FormatException($"tapdisk stats: field '{name}' must be an integer");

    private static int Int(JsonElement e, string name) =>
        Get(e, name) is { ValueKind: JsonValueKind.Number } v && v.TryGetInt32(out int x)
            ? x : throw new FormatException($"tapdisk stats: field '{name}' must be a 32-bit integer");

    private static string Str(JsonElement e, string name) =>
        Get(e, name) is { ValueKind: JsonValueKind.String } v
            ? v.GetString()! : throw new FormatException($"tapdisk stats: field '{name}' must be a string");
}
