using System.Buffers;

namespace BlkTapCtrl.Protocol.XenStore;

/// <summary>
/// Reassembles xs_wire frames from a byte stream. Peers write the header and each payload piece with
/// separate <c>write()</c> calls (libxenstore does), so one read is never assumed to be one message.
/// Usage: read into <see cref="GetFillBuffer"/>, call <see cref="Advance"/>, then drain <see cref="TryRead"/>.
/// The buffer is pooled and sized for several frames so one read can carry many pipelined messages.
/// </summary>
public sealed class XsFrameReader : IDisposable
{
    private byte[] _buffer;
    private int _start;
    private int _end;

    public XsFrameReader(int capacity = 64 * 1024)
    {
        _buffer = ArrayPool<byte>.Shared.Rent(Math.Max(capacity, 2 * XsLimits.FrameMax));
    }

    /// <summary>Bytes received but not yet returned as a frame (a partial frame waiting for the rest).</summary>
    public int Buffered => _end - _start;

    /// <summary>
    /// Free space to receive into; at least one whole frame fits. Frames returned earlier by <see cref="TryRead"/>
    /// may be moved, so their payloads are no longer valid after this call.
    /// </summary>
    public Memory<byte> GetFillBuffer()
    {
        ObjectDisposedException.ThrowIf(_buffer.Length == 0, this);
        if (_buffer.Length - _end < XsLimits.FrameMax)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }
        return _buffer.AsMemory(_end);
    }

    /// <summary>Records that <paramref name="count"/> bytes were written into the fill buffer.</summary>
    public void Advance(int count)
    {
        if (count < 0 || _end + count > _buffer.Length)
            throw new ArgumentOutOfRangeException(nameof(count), count, "more bytes than the fill buffer holds");
        _end += count;
    }

    /// <summary>
    /// Returns the next complete frame, or false when more bytes are needed. Throws
    /// <see cref="XsProtocolException"/> when a header announces more than <see cref="XsLimits.PayloadMax"/>
    /// bytes: the stream is then unusable and the connection must be dropped.
    /// </summary>
    public bool TryRead(out XsHeader header, out ReadOnlyMemory<byte> payload)
    {
        int available = _end - _start;
        if (available < XsHeader.Size)
        {
            header = default;
            payload = default;
            return false;
        }
        header = XsHeader.Read(_buffer.AsSpan(_start, XsHeader.Size));
        if (header.Length > XsLimits.PayloadMax)
            throw new XsProtocolException($"xenstore frame {header} announces a payload of {header.Length} bytes; the limit is {XsLimits.PayloadMax}");
        int total = XsHeader.Size + (int)header.Length;
        if (available < total)
        {
            payload = default;
            return false;
        }
        payload = _buffer.AsMemory(_start + XsHeader.Size, (int)header.Length);
        _start += total;
        if (_start == _end) _start = _end = 0;
        return true;
    }

    public void Dispose()
    {
        var buffer = _buffer;
        _buffer = [];
        if (buffer.Length > 0) ArrayPool<byte>.Shared.Return(buffer);
    }
}
