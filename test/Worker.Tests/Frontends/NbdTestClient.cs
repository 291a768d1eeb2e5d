using System.Net;
using System.Net.Sockets;
using BlkTapCtrl.Protocol.Nbd;

namespace BlkTapCtrl.Testing;

/// <summary>
/// A blocking NBD client for tests, written on the protocol codec: it can negotiate like libnbd, send
/// raw bytes to break the protocol on purpose, pipeline requests, and read simple or structured replies.
/// </summary>
public sealed class NbdTestClient : IDisposable
{
    private readonly Socket _socket;

    public NbdTestClient(string unixPath)
    {
        _socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _socket.Connect(new UnixDomainSocketEndPoint(unixPath));
        _socket.ReceiveTimeout = 10_000;
    }

    public NbdTestClient(IPEndPoint endpoint)
    {
        _socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        _socket.Connect(endpoint);
        _socket.ReceiveTimeout = 10_000;
    }

    public NbdHandshakeFlags ServerFlags { get; private set; }
    public ulong Size { get; private set; }
    public NbdTransmissionFlags Flags { get; private set; }
    public bool Structured { get; private set; }
    public (uint Minimum, uint Preferred, uint Maximum)? BlockSize { get; private set; }
    private ulong _nextCookie = 1;
    private readonly Dictionary<ulong, (NbdCommand Command, uint Length)> _pending = new();

    /// <param name="Chunks">The chunk types of a structured reply, in order (null for a simple reply).</param>
    public sealed record Reply(ulong Cookie, NbdError Error, string? Message, byte[] Data, NbdBlockDescriptor[]? Extents, NbdReplyType[]? Chunks = null);
    public sealed record OptionReply(NbdOptionReplyHeader Header, byte[] Payload);

    public NbdHandshakeFlags ReadGreeting()
    {
        ServerFlags = NbdHandshake.ReadGreeting(ReadExactly(NbdHandshake.GreetingSize));
        return ServerFlags;
    }

    public void SendClientFlags(NbdClientFlags flags)
    {
        var b = new byte[4];
        NbdHandshake.WriteClientFlags(b, flags);
        Send(b);
    }

    public void SendOption(NbdOption option, ReadOnlySpan<byte> data)
    {
        var b = new byte[NbdOptionHeader.Size + data.Length];
        new NbdOptionHeader(option, (uint)data.Length).WriteTo(b);
        data.CopyTo(b.AsSpan(NbdOptionHeader.Size));
        Send(b);
    }

    public OptionReply ReadOptionReply()
    {
        NbdOptionReplyHeader.TryRead(ReadExactly(NbdOptionReplyHeader.Size), out var h);
        return new OptionReply(h, ReadExactly((int)h.Length));
    }

    /// <summary>Replies to one option up to and including the final ACK or error.</summary>
    public List<OptionReply> OptionReplies(NbdOption option, ReadOnlySpan<byte> data)
    {
        SendOption(option, data);
        var replies = new List<OptionReply>();
        while (true)
        {
            var r = ReadOptionReply();
            replies.Add(r);
            if (r.Header.Type == NbdOptionReplyType.Ack || r.Header.IsError) return replies;
        }
    }

    /// <summary>Greeting, fixed newstyle, optional structured replies + base:allocation, then GO.</summary>
    public void Connect(bool structured = true, bool baseAllocation = true, string export = "")
    {
        ReadGreeting();
        SendClientFlags(NbdClientFlags.FixedNewstyle | NbdClientFlags.NoZeroes);
        if (structured)
        {
            var r = OptionReplies(NbdOption.StructuredReply, []);
            Structured = r[^1].Header.Type == NbdOptionReplyType.Ack;
            if (baseAllocation)
            {
                var set = OptionReplies(NbdOption.SetMetaContext,
                    new NbdMetaContextRequest(export, ["base:allocation"]).Encode());
                if (set[^1].Header.IsError) throw new InvalidOperationException($"SET_META_CONTEXT failed: {set[^1].Header.Type}");
            }
        }
        var go = OptionReplies(NbdOption.Go, new NbdInfoRequest(export, [NbdInfoType.BlockSize]).Encode());
        if (go[^1].Header.IsError)
            throw new InvalidOperationException($"GO failed: {go[^1].Header.Type} {System.Text.Encoding.UTF8.GetString(go[^1].Payload)}");
        foreach (var info in go)
        {
            if (info.Header.Type != NbdOptionReplyType.Info) continue;
            switch (NbdOptionReplies.ReadInfoType(info.Payload))
            {
                case NbdInfoType.Export:
                    (Size, Flags) = NbdOptionReplies.ReadInfoExport(info.Payload);
                    break;
                case NbdInfoType.BlockSize:
                    BlockSize = NbdOptionReplies.ReadInfoBlockSize(info.Payload);
                    break;
            }
        }
    }

    public ulong SendRequest(NbdCommand command, ulong offset, uint length, NbdCommandFlags flags = 0, ReadOnlySpan<byte> payload = default)
    {
        ulong cookie = _nextCookie++;
        var b = new byte[NbdRequest.Size + payload.Length];
        new NbdRequest(flags, command, cookie, offset, length).WriteTo(b);
        payload.CopyTo(b.AsSpan(NbdRequest.Size));
        lock (_pending) _pending[cookie] = (command, length);
        Send(b);
        return cookie;
    }

    /// <summary>Reads one whole reply (all chunks of a structured reply); a simple READ reply's data length comes from the request sent with its cookie.</summary>
    public Reply ReadReply()
    {
        var first = ReadExactly(4);
        if (System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(first) == NbdMagic.SimpleReply)
        {
            var rest = ReadExactly(NbdSimpleReply.Size - 4);
            var simple = NbdSimpleReply.Read([.. first, .. rest]);
            (NbdCommand Command, uint Length) sent;
            lock (_pending) _pending.Remove(simple.Cookie, out sent);
            uint readLength = sent.Command == NbdCommand.Read ? sent.Length : 0;
            byte[] data = simple.Error == NbdError.None && readLength > 0 ? ReadExactly((int)readLength) : [];
            return new Reply(simple.Cookie, simple.Error, null, data, null);
        }
        var headerBytes = first.Concat(ReadExactly(NbdChunkHeader.Size - 4)).ToArray();
        var chunks = new List<(NbdChunkHeader, byte[])>();
        while (true)
        {
            var h = NbdChunkHeader.Read(headerBytes);
            var payload = ReadExactly((int)h.Length);
            chunks.Add((h, payload));
            if (h.IsDone) break;
            headerBytes = ReadExactly(NbdChunkHeader.Size);
        }
        var error = NbdError.None;
        string? message = null;
        var assembled = new MemoryStream();
        NbdBlockDescriptor[]? extents = null;
        ulong cookie = chunks[0].Item1.Cookie;
        foreach (var (h, p) in chunks)
        {
            if (h.Cookie != cookie) throw new InvalidOperationException("chunks of different cookies interleaved in one read");
            switch (h.Type)
            {
                case NbdReplyType.OffsetData:
                    assembled.Write(p, 8, p.Length - 8);
                    break;
                case NbdReplyType.OffsetHole:
                    assembled.Write(new byte[NbdStructuredReply.ReadOffsetHole(p).Length]);
                    break;
                case NbdReplyType.BlockStatus:
                    extents = NbdStructuredReply.ReadBlockStatus(p).Descriptors;
                    break;
                case NbdReplyType.Error or NbdReplyType.ErrorOffset:
                    (error, message) = NbdStructuredReply.ReadError(p);
                    break;
            }
        }
        lock (_pending) _pending.Remove(cookie);
        return new Reply(cookie, error, message, assembled.ToArray(), extents, [.. chunks.Select(c => c.Item1.Type)]);
    }

    public byte[] Read(ulong offset, uint length)
    {
        SendRequest(NbdCommand.Read, offset, length);
        var r = ReadReply();
        if (r.Error != NbdError.None) throw new IOException($"read {offset}+{length}: {r.Error} {r.Message}");
        return r.Data;
    }

    public NbdError Write(ulong offset, ReadOnlySpan<byte> data, NbdCommandFlags flags = 0)
    {
        SendRequest(NbdCommand.Write, offset, (uint)data.Length, flags, data);
        return ReadReply().Error;
    }

    public NbdError Command(NbdCommand command, ulong offset = 0, uint length = 0, NbdCommandFlags flags = 0)
    {
        SendRequest(command, offset, length, flags);
        return ReadReply().Error;
    }

    public void Disconnect() => SendRequest(NbdCommand.Disconnect, 0, 0);

    public void Send(ReadOnlySpan<byte> bytes)
    {
        while (!bytes.IsEmpty)
        {
            int n = _socket.Send(bytes);
            bytes = bytes[n..];
        }
    }

    public byte[] ReadExactly(int n) =>
        ReadExactlyOrEnd(n) ?? throw new EndOfStreamException($"server closed the connection before any of {n} bytes");

    /// <summary>True when the server closed the connection (reads EOF or a reset within the timeout).</summary>
    public bool IsClosedByServer(int timeoutMs = 5000)
    {
        _socket.ReceiveTimeout = timeoutMs;
        try { return _socket.Receive(new byte[1]) == 0; }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset) { return true; }
        catch (SocketException) { return false; }
    }

    /// <summary>
    /// Like <see cref="ReadExactly"/>, but null when the server closed (EOF or reset) before the first
    /// byte: the end of a stream of whole messages. A close inside the message still throws.
    /// </summary>
    public byte[]? ReadExactlyOrEnd(int n)
    {
        var b = new byte[n];
        int got = 0;
        while (got < n)
        {
            int r;
            try { r = _socket.Receive(b, got, n - got, SocketFlags.None); }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset && got == 0) { return null; }
            if (r == 0)
            {
                if (got == 0) return null;
                throw new EndOfStreamException($"server closed the connection after {got} of {n} bytes");
            }
            got += r;
        }
        return b;
    }

    /// <summary>Bounds every blocking receive and send (a server that hangs fails the test instead of stalling it).</summary>
    public int TimeoutMs
    {
        set { _socket.ReceiveTimeout = value; _socket.SendTimeout = value; }
    }

    /// <summary>Sends what the socket takes now without waiting: the bytes sent, 0 when it is full.</summary>
    public int SendWithoutWaiting(ReadOnlySpan<byte> bytes)
    {
        _socket.Blocking = false;
        try
        {
            int n = _socket.Send(bytes, SocketFlags.None, out var error);
            return error is SocketError.Success ? n : error is SocketError.WouldBlock ? 0 : throw new SocketException((int)error);
        }
        finally { _socket.Blocking = true; }
    }

    /// <summary>Half-close: the server reads EOF, while its replies can still be read.</summary>
    public void ShutdownSend() => _socket.Shutdown(SocketShutdown.Send);

    /// <summary>Bytes received and not yet read (FIONREAD).</summary>
    public int Available => _socket.Available;

    public void Dispose() => _socket.Dispose();
}
