using System.Text;

namespace BlkTapCtrl.Protocol.XenStore;

/// <summary>
/// Writes one frame (header + payload pieces) into a caller's buffer without allocating. Strings are
/// encoded as UTF-8; <see cref="Nul"/> adds the separator the payload syntax needs. <see cref="Finish"/>
/// fills in the header's length and returns the frame's total size.
/// </summary>
public ref struct XsFrameBuilder
{
    private readonly Span<byte> _frame;
    private readonly XsMessageType _type;
    private readonly uint _requestId;
    private readonly uint _transactionId;
    private int _length;

    /// <param name="frame">Destination; at least <see cref="XsLimits.FrameMax"/> bytes for any message.</param>
    public XsFrameBuilder(Span<byte> frame, XsMessageType type, uint requestId, uint transactionId)
    {
        if (frame.Length < XsHeader.Size)
            throw new ArgumentException("frame buffer smaller than a header", nameof(frame));
        _frame = frame;
        _type = type;
        _requestId = requestId;
        _transactionId = transactionId;
    }

    public readonly int PayloadLength => _length;

    public void String(string text)
    {
        int max = Encoding.UTF8.GetMaxByteCount(text.Length);
        var room = Room();
        if (max > room.Length && Encoding.UTF8.GetByteCount(text) > room.Length)
            throw TooLarge(Encoding.UTF8.GetByteCount(text));
        _length += Encoding.UTF8.GetBytes(text, room);
    }

    /// <summary>A string followed by its terminating NUL.</summary>
    public void StringNul(string text)
    {
        String(text);
        Nul();
    }

    public void Bytes(ReadOnlySpan<byte> bytes)
    {
        var room = Room();
        if (bytes.Length > room.Length) throw TooLarge(bytes.Length);
        bytes.CopyTo(room);
        _length += bytes.Length;
    }

    public void Nul()
    {
        var room = Room();
        if (room.IsEmpty) throw TooLarge(1);
        room[0] = 0;
        _length++;
    }

    /// <summary>Writes the header and returns the frame size (header + payload).</summary>
    public readonly int Finish()
    {
        new XsHeader(_type, _requestId, _transactionId, (uint)_length).Write(_frame);
        return XsHeader.Size + _length;
    }

    private readonly Span<byte> Room()
    {
        int end = Math.Min(_frame.Length, XsHeader.Size + XsLimits.PayloadMax);
        return _frame[(XsHeader.Size + _length)..end];
    }

    private readonly XsProtocolException TooLarge(int adding) =>
        new($"{XsMessageTypes.Name(_type)} payload would be {_length + adding}+ bytes; the limit is {XsLimits.PayloadMax}");
}
