using System.Buffers.Binary;
using System.Net.Sockets;

namespace BlkTapCtrl.Integration.Tests.Diagnostics;

/// <summary>
/// The smallest NBD client that does what these tests need and nothing else: fixed-newstyle handshake with
/// NBD_OPT_EXPORT_NAME, simple replies, READ/WRITE/DISC. Unlike qemu-io it never sends FLUSH, which
/// /dev/full would fail (EINVAL, retried for 120 s by the VBD).
/// </summary>
public sealed class MinimalNbdClient : IDisposable
{
    private const ulong NbdMagic = 0x4E42444D41474943, OptMagic = 0x49484156454F5054;
    private const uint RequestMagic = 0x25609513, SimpleReplyMagic = 0x67446698;
    private readonly Socket _socket;
    private ulong _cookie;

    public MinimalNbdClient(string unixPath)
    {
        _socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _socket.Connect(new UnixDomainSocketEndPoint(unixPath));
        var greeting = Receive(18);
        if (BinaryPrimitives.ReadUInt64BigEndian(greeting) != NbdMagic || BinaryPrimitives.ReadUInt64BigEndian(greeting.AsSpan(8)) != OptMagic)
            throw new IOException("not an NBD newstyle server");
        var hello = new byte[4 + 16];
        BinaryPrimitives.WriteUInt32BigEndian(hello, 1 | 2);           // FIXED_NEWSTYLE | NO_ZEROES
        BinaryPrimitives.WriteUInt64BigEndian(hello.AsSpan(4), OptMagic);
        BinaryPrimitives.WriteUInt32BigEndian(hello.AsSpan(12), 1);     // NBD_OPT_EXPORT_NAME, empty name
        BinaryPrimitives.WriteUInt32BigEndian(hello.AsSpan(16), 0);
        _socket.Send(hello);
        Size = BinaryPrimitives.ReadUInt64BigEndian(Receive(10));
    }

    public ulong Size { get; }

    /// <summary>Writes; returns the server's errno (0 = success).</summary>
    public int Write(ulong offset, byte[] data) => Command(1, offset, (uint)data.Length, data, null);

    public int Read(ulong offset, byte[] into) => Command(0, offset, (uint)into.Length, null, into);

    private int Command(ushort type, ulong offset, uint length, byte[]? payload, byte[]? into)
    {
        var request = new byte[28];
        BinaryPrimitives.WriteUInt32BigEndian(request, RequestMagic);
        BinaryPrimitives.WriteUInt16BigEndian(request.AsSpan(6), type);
        BinaryPrimitives.WriteUInt64BigEndian(request.AsSpan(8), ++_cookie);
        BinaryPrimitives.WriteUInt64BigEndian(request.AsSpan(16), offset);
        BinaryPrimitives.WriteUInt32BigEndian(request.AsSpan(24), length);
        _socket.Send(request);
        if (payload != null) _socket.Send(payload);
        var reply = Receive(16);
        if (BinaryPrimitives.ReadUInt32BigEndian(reply) != SimpleReplyMagic || BinaryPrimitives.ReadUInt64BigEndian(reply.AsSpan(8)) != _cookie)
            throw new IOException("unexpected NBD reply");
        int error = (int)BinaryPrimitives.ReadUInt32BigEndian(reply.AsSpan(4));
        if (error == 0 && into != null)
            Receive(into.Length).CopyTo(into, 0);
        return error;
    }

    private byte[] Receive(int n)
    {
        var buf = new byte[n];
        int got = 0;
        while (got < n)
        {
            int r = _socket.Receive(buf, got, n - got, SocketFlags.None);
            if (r == 0) throw new IOException("NBD server closed the connection");
            got += r;
        }
        return buf;
    }

    public void Dispose()
    {
        try
        {
            var disc = new byte[28];
            BinaryPrimitives.WriteUInt32BigEndian(disc, RequestMagic);
            BinaryPrimitives.WriteUInt16BigEndian(disc.AsSpan(6), 2);
            _socket.Send(disc);
        }
        catch (SocketException) { }
        _socket.Dispose();
    }
}
