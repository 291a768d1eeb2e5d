using System.Buffers.Binary;

namespace BlkTapCtrl.Diagnostics.Syslog;

/// <summary>
/// A fixed-size FIFO of packets waiting for the syslog daemon. Each record is a 2-byte length followed by the
/// packet, always contiguous so it can be sent straight from the ring; a record that does not fit before the
/// end of the buffer starts at offset 0 and the rest of the tail is skipped (marked when there is room for a
/// marker). One array for the client's life: queueing never allocates.
/// </summary>
internal sealed class SyslogRing
{
    private const int HeaderBytes = 2;
    private const ushort WrapMarker = 0xFFFF;

    private readonly byte[] _buffer;
    private int _head;   // offset of the oldest record
    private int _tail;   // offset where the next record goes

    public SyslogRing(int capacityBytes)
    {
        if (capacityBytes < SyslogPacketWriter.MaxPacketBytes + HeaderBytes)
            throw new ArgumentOutOfRangeException(nameof(capacityBytes), capacityBytes,
                $"the syslog ring must hold at least one {SyslogPacketWriter.MaxPacketBytes}-byte packet");
        // Not zeroed: every byte is written before it is sent, and untouched pages are never faulted in, so a worker
        // whose daemon keeps up never pays for the 64 KiB (start → PID_RSP, bench: blktap-bench worker).
        _buffer = GC.AllocateUninitializedArray<byte>(capacityBytes);
    }

    public int Count { get; private set; }

    public bool IsEmpty => Count == 0;

    /// <summary>
    /// Appends a packet; false when there is no room (the caller counts the drop). Once wrapped, the tail stays
    /// strictly below the head, so tail == head always means "not wrapped".
    /// </summary>
    public bool TryEnqueue(ReadOnlySpan<byte> packet)
    {
        int need = HeaderBytes + packet.Length;
        if (Count == 0)
            _head = _tail = 0;
        int at;
        if (_tail >= _head)
        {
            // Free space is [tail, end) and [0, head).
            if (_buffer.Length - _tail >= need)
                at = _tail;
            else if (_head > need)
            {
                if (_buffer.Length - _tail >= HeaderBytes)
                    BinaryPrimitives.WriteUInt16LittleEndian(_buffer.AsSpan(_tail), WrapMarker);
                at = 0;
            }
            else
                return false;
        }
        else if (_head - _tail > need)
            at = _tail;
        else
            return false;

        BinaryPrimitives.WriteUInt16LittleEndian(_buffer.AsSpan(at), (ushort)packet.Length);
        packet.CopyTo(_buffer.AsSpan(at + HeaderBytes));
        _tail = at + need;
        Count++;
        return true;
    }

    /// <summary>The oldest packet, left in place until <see cref="Dequeue"/>.</summary>
    public bool TryPeek(out ReadOnlySpan<byte> packet)
    {
        if (Count == 0)
        {
            packet = default;
            return false;
        }
        SkipWrap();
        int length = BinaryPrimitives.ReadUInt16LittleEndian(_buffer.AsSpan(_head));
        packet = _buffer.AsSpan(_head + HeaderBytes, length);
        return true;
    }

    /// <summary>The ring's storage, for sending packets straight from it (offsets from <see cref="PeekMany"/>).</summary>
    public byte[] Buffer => _buffer;

    /// <summary>
    /// Up to <paramref name="destination"/>.Length of the oldest packets as (offset, length) in <see cref="Buffer"/>,
    /// oldest first, left in place until dequeued.
    /// </summary>
    public int PeekMany(Span<(int Offset, int Length)> destination)
    {
        int n = 0, head = _head, left = Count;
        while (n < destination.Length && left > 0)
        {
            if (_buffer.Length - head < HeaderBytes || BinaryPrimitives.ReadUInt16LittleEndian(_buffer.AsSpan(head)) == WrapMarker)
                head = 0;
            int length = BinaryPrimitives.ReadUInt16LittleEndian(_buffer.AsSpan(head));
            destination[n++] = (head + HeaderBytes, length);
            head += HeaderBytes + length;
            left--;
        }
        return n;
    }

    public void Dequeue()
    {
        if (Count == 0)
            throw new InvalidOperationException("the syslog ring is empty");
        SkipWrap();
        _head += HeaderBytes + BinaryPrimitives.ReadUInt16LittleEndian(_buffer.AsSpan(_head));
        Count--;
    }

    private void SkipWrap()
    {
        if (_buffer.Length - _head < HeaderBytes
            || BinaryPrimitives.ReadUInt16LittleEndian(_buffer.AsSpan(_head)) == WrapMarker)
            _head = 0;
    }
}
