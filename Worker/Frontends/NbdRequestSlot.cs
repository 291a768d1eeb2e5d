using System.Runtime.InteropServices;
using BlkTapCtrl.Protocol.Nbd;
using BlkTapCtrl.Worker.IO;

namespace BlkTapCtrl.Worker.Frontends;

/// <summary>
/// One NBD request in flight on a connection, from its header to its last reply byte: the request,
/// its pooled data buffer, the VBD requests it is split into, and the reply header it is answered
/// with. Reused from the connection's free list so steady-state requests allocate nothing.
/// </summary>
internal sealed unsafe class NbdRequestSlot : IDisposable
{
    /// <summary>Room for the largest header we send: a structured error chunk with a short message.</summary>
    public const int HeaderCapacity = 512;

    public readonly byte* Header = (byte*)NativeMemory.Alloc(HeaderCapacity);

    public NbdRequest Request;
    /// <summary>Payload (WRITE), read data (READ) or block status descriptors; null for none.</summary>
    public AlignedBuffer? Data;
    /// <summary>WRITE payload bytes received so far.</summary>
    public int Received;

    /// <summary>VBD requests submitted and not yet completed.</summary>
    public int PartsOutstanding;
    /// <summary>Next byte offset still to submit (WRITE_ZEROES is split into several VBD requests).</summary>
    public ulong NextOffset;
    public ulong EndOffset;
    /// <summary>FUA: a flush must follow once the data parts are done.</summary>
    public bool FlushPending;
    public bool FlushSubmitted;
    /// <summary>First error of any part, as −errno.</summary>
    public int Error;
    /// <summary>A READ of a hole: answered with one OFFSET_HOLE chunk, no data.</summary>
    public bool Hole;

    /// <summary>Bytes of the reply: header, then <see cref="ReplyDataLength"/> bytes of <see cref="Data"/>.</summary>
    public int HeaderLength;
    public int ReplyDataLength;

    /// <summary>Link in the connection's send queue or wait queue.</summary>
    public NbdRequestSlot? Next;

    public int ReplyLength => HeaderLength + ReplyDataLength;

    public void Reset()
    {
        Request = default;
        Data = null;
        Received = 0;
        PartsOutstanding = 0;
        NextOffset = EndOffset = 0;
        FlushPending = FlushSubmitted = false;
        Error = 0;
        Hole = false;
        HeaderLength = ReplyDataLength = 0;
        Next = null;
    }

    public Span<byte> HeaderSpan => new(Header, HeaderCapacity);

    public void Dispose() => NativeMemory.Free(Header);
}

/// <summary>A FIFO of slots linked through <see cref="NbdRequestSlot.Next"/> (no allocation).</summary>
internal struct NbdSlotQueue
{
    public NbdRequestSlot? Head;
    private NbdRequestSlot? _tail;
    public int Count;

    public readonly bool IsEmpty => Head == null;

    public void Enqueue(NbdRequestSlot slot)
    {
        slot.Next = null;
        if (_tail == null) Head = slot; else _tail.Next = slot;
        _tail = slot;
        Count++;
    }

    public NbdRequestSlot? Dequeue()
    {
        var s = Head;
        if (s == null) return null;
        Head = s.Next;
        if (Head == null) _tail = null;
        s.Next = null;
        Count--;
        return s;
    }
}
