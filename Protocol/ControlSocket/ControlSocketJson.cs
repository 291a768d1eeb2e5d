using System.Buffers;
using System.Text.Json;

namespace BlkTapCtrl.Protocol.ControlSocket;

/// <summary>
/// Encodes and decodes the control socket's lines by hand (no reflection: callers may publish as NativeAOT).
/// Responses are <c>{"ok":true, …}</c> or <c>{"ok":false,"error":"text"}</c>; decoding errors throw
/// <see cref="ControlSocketProtocolException"/> naming the field.
/// </summary>
public static class ControlSocketJson
{
    private static readonly JsonWriterOptions Compact = new() { Indented = false };

    public static byte[] EncodeRequest(ControlRequest request) => Line(w =>
    {
        w.WriteString("op", request.Op);
        if (request.DomId is { } d) w.WriteNumber("domid", d);
        if (request.DevId is { } v) w.WriteNumber("devid", v);
    });

    public static ControlRequest DecodeRequest(ReadOnlySpan<byte> line)
    {
        using var doc = Parse(line);
        var root = doc.RootElement;
        return new ControlRequest(RequiredString(root, "op"), OptionalInt(root, "domid"), OptionalInt(root, "devid"));
    }

    public static byte[] EncodeError(string error) => Line(w =>
    {
        w.WriteBoolean("ok", false);
        w.WriteString("error", error);
    });

    public static byte[] EncodeInfo(ControllerInfo info) => Line(w =>
    {
        w.WriteBoolean("ok", true);
        w.WriteNumber("pid", info.Pid);
        w.WriteNumber("dom0", info.Dom0);
        w.WriteString("xenstore", info.XenStorePath);
        w.WriteString("runDir", info.RunDir);
        w.WriteString("logDir", info.LogDir);
    });

    public static byte[] EncodeList(IReadOnlyList<ChannelInfo> channels) => Line(w =>
    {
        w.WriteBoolean("ok", true);
        w.WriteStartArray("channels");
        foreach (var c in channels)
        {
            w.WriteStartObject();
            WriteChannel(w, c);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    });

    /// <summary>A stats answer: the VBD, then the worker's snapshot for it as raw JSON (docs/tapdisk-stats.md).</summary>
    public static byte[] EncodeStats(ChannelInfo channel, byte[] snapshotJson) => Line(w =>
    {
        w.WriteBoolean("ok", true);
        w.WriteStartObject("vbd");
        WriteChannel(w, channel);
        w.WriteEndObject();
        // Re-written compactly: the snapshot file may be indented, and a response must stay one line.
        using var snapshot = JsonDocument.Parse(snapshotJson);
        w.WritePropertyName("stats");
        snapshot.RootElement.WriteTo(w);
    });

    public static void WriteChannel(Utf8JsonWriter w, ChannelInfo c)
    {
        w.WriteNumber("domid", c.DomId);
        w.WriteNumber("devid", c.DevId);
        w.WriteString("backend", c.Backend);
        w.WriteNumber("cookie", c.Cookie);
        w.WriteNumber("minor", c.Minor);
        w.WriteString("channel", c.ChannelState);
        w.WriteString("vbd", c.VbdState);
        w.WriteString("shutdown", c.ShutdownState);
        w.WriteBoolean("shutdownForce", c.ShutdownForce);
        w.WriteNumber("pid", c.Pid);
        w.WriteString("params", c.Params);
        w.WriteStartArray("images");
        foreach (var image in c.Images) w.WriteStringValue(image);
        w.WriteEndArray();
        w.WriteBoolean("readOnly", c.ReadOnly);
        w.WriteString("nbdSocket", c.NbdSocket);
        w.WriteString("ring", c.Ring);
    }

    public static ChannelInfo ReadChannel(JsonElement e) => new()
    {
        DomId = RequiredInt(e, "domid"),
        DevId = RequiredInt(e, "devid"),
        Backend = RequiredString(e, "backend"),
        Cookie = RequiredInt(e, "cookie"),
        Minor = RequiredInt(e, "minor"),
        ChannelState = RequiredString(e, "channel"),
        VbdState = RequiredString(e, "vbd"),
        ShutdownState = RequiredString(e, "shutdown"),
        ShutdownForce = e.TryGetProperty("shutdownForce", out var f) && f.ValueKind == JsonValueKind.True,
        Pid = RequiredInt(e, "pid"),
        Params = RequiredString(e, "params"),
        Images = e.TryGetProperty("images", out var images) && images.ValueKind == JsonValueKind.Array
            ? images.EnumerateArray().Where(i => i.ValueKind == JsonValueKind.String).Select(i => i.GetString()!).ToList()
            : [],
        ReadOnly = e.TryGetProperty("readOnly", out var r) && r.ValueKind == JsonValueKind.True,
        NbdSocket = RequiredString(e, "nbdSocket"),
        Ring = RequiredString(e, "ring"),
    };

    /// <summary>
    /// Parses a response line; a <c>{"ok":false}</c> answer throws <see cref="ControlSocketErrorException"/> with the
    /// controller's text. The caller owns (and disposes) the returned document.
    /// </summary>
    public static JsonDocument DecodeResponse(ReadOnlySpan<byte> line)
    {
        var doc = Parse(line);
        var root = doc.RootElement;
        if (!root.TryGetProperty("ok", out var ok) || ok.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
        {
            doc.Dispose();
            throw new ControlSocketProtocolException("response: field 'ok' missing or not a boolean");
        }
        if (ok.ValueKind == JsonValueKind.False)
        {
            string error = root.TryGetProperty("error", out var e) && e.ValueKind == JsonValueKind.String ? e.GetString()! : "(no error text)";
            doc.Dispose();
            throw new ControlSocketErrorException(error);
        }
        return doc;
    }

    public static ControllerInfo ReadInfo(JsonElement root) => new(RequiredInt(root, "pid"), RequiredInt(root, "dom0"),
        RequiredString(root, "xenstore"), RequiredString(root, "runDir"), RequiredString(root, "logDir"));

    public static IReadOnlyList<ChannelInfo> ReadList(JsonElement root)
    {
        if (!root.TryGetProperty("channels", out var array) || array.ValueKind != JsonValueKind.Array)
            throw new ControlSocketProtocolException("response: field 'channels' missing or not an array");
        var list = new List<ChannelInfo>(array.GetArrayLength());
        foreach (var e in array.EnumerateArray())
            list.Add(ReadChannel(e));
        return list;
    }

    private static byte[] Line(Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer, Compact))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }
        buffer.Write("\n"u8);
        return buffer.WrittenSpan.ToArray();
    }

    private static JsonDocument Parse(ReadOnlySpan<byte> line)
    {
        try
        {
            var doc = JsonDocument.Parse(line.ToArray());
            var kind = doc.RootElement.ValueKind;
            if (kind != JsonValueKind.Object)
            {
                doc.Dispose();
                throw new ControlSocketProtocolException($"line is a JSON {kind}, not an object");
            }
            return doc;
        }
        catch (JsonException e)
        {
            throw new ControlSocketProtocolException($"line is not JSON: {e.Message}");
        }
    }

    private static string RequiredString(JsonElement e, string name) =>
        e.TryGetProperty(name, out var p) && p.ValueKind == JsonValueKind.String ? p.GetString()!
            : throw new ControlSocketProtocolException($"field '{name}' missing or not a string");

    private static int RequiredInt(JsonElement e, string name) =>
        OptionalInt(e, name) ?? throw new ControlSocketProtocolException($"field '{name}' missing");

    private static int? OptionalInt(JsonElement e, string name)
    {
        if (!e.TryGetProperty(name, out var p) || p.ValueKind == JsonValueKind.Null) return null;
        if (p.ValueKind != JsonValueKind.Number || !p.TryGetInt32(out int v))
            throw new ControlSocketProtocolException($"field '{name}' is not a 32-bit integer: {p.GetRawText()}");
        return v;
    }
}

/// <summary>A line that is not a valid control socket message.</summary>
public sealed class ControlSocketProtocolException(string message) : Exception(message);

/// <summary>The controller answered <c>{"ok":false}</c>; the message is its error text.</summary>
public sealed class ControlSocketErrorException(string message) : Exception(message);
