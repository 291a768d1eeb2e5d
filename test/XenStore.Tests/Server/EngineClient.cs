using System.Text;
using BlkTapCtrl.Protocol.XenStore;
using BlkTapCtrl.XenStore.Server;

namespace BlkTapCtrl.XenStore.Tests.Server;

/// <summary>An in-memory client of a <see cref="StoreEngine"/>: records every frame the engine sends it.</summary>
internal sealed class EngineClient(StoreEngine engine, uint domId = 0, int maxQueued = int.MaxValue) : ClientSession(domId)
{
    private uint _nextRequest = 1;

    public List<(XsHeader Header, byte[] Payload)> Received { get; } = [];

    public string? DroppedBecause { get; private set; }

    public List<(string Path, string Token)> Events =>
        Received.Where(f => f.Header.Type == XsMessageType.WatchEvent).Select(f => XsPayload.WatchEvent(f.Payload)).ToList();

    public void ClearEvents() => Received.RemoveAll(f => f.Header.Type == XsMessageType.WatchEvent);

    /// <summary>Sends a request and returns its reply: "OK", the value, the NUL-joined strings, or "ERROR:EXXX".</summary>
    public string Call(XsMessageType type, uint tx, byte[] payload)
    {
        uint id = _nextRequest++;
        engine.Handle(this, new XsHeader(type, id, tx, (uint)payload.Length), payload);
        var reply = Received.Last(f => f.Header.Type != XsMessageType.WatchEvent);
        Assert.That(reply.Header.RequestId, Is.EqualTo(id), "reply carries the request's req_id");
        Assert.That(reply.Header.TransactionId, Is.EqualTo(tx), "reply carries the request's tx_id");
        Assert.That(reply.Header.Length, Is.EqualTo((uint)reply.Payload.Length));
        if (reply.Header.Type == XsMessageType.Error)
            return "ERROR:" + XsErrors.Name(XsErrors.Parse(reply.Payload));
        Assert.That(reply.Header.Type, Is.EqualTo(type));
        return Encoding.UTF8.GetString(reply.Payload).TrimEnd('\0').Replace('\0', '|');
    }

    public string Call(XsMessageType type, uint tx, params string[] args) =>
        Call(type, tx, Encoding.UTF8.GetBytes(string.Concat(args.Select(a => a + "\0"))));

    public string Write(string path, string value, uint tx = 0) =>
        Call(XsMessageType.Write, tx, Encoding.UTF8.GetBytes(path + "\0" + value));

    public string Read(string path, uint tx = 0) => Call(XsMessageType.Read, tx, path);

    public string Rm(string path, uint tx = 0) => Call(XsMessageType.Rm, tx, path);

    public string Mkdir(string path, uint tx = 0) => Call(XsMessageType.Mkdir, tx, path);

    public string Dir(string path, uint tx = 0) => Call(XsMessageType.Directory, tx, path);

    public string Watch(string path, string token) => Call(XsMessageType.Watch, 0, path, token);

    public uint Start() => uint.Parse(Call(XsMessageType.TransactionStart, 0, ""), System.Globalization.CultureInfo.InvariantCulture);

    public string End(uint tx, bool commit) => Call(XsMessageType.TransactionEnd, tx, commit ? "T" : "F");

    protected internal override bool Send(XsHeader header, ReadOnlySpan<byte> payload)
    {
        if (Received.Count >= maxQueued) return false;
        Received.Add((header, payload.ToArray()));
        return true;
    }

    protected override void OnDisconnectRequested(string reason) => DroppedBecause = reason;
}
