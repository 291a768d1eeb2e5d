namespace BlkTapCtrl.Worker.IO;

/// <summary>Intrusive FIFO of <see cref="IoRequest"/>s (no allocation).</summary>
public struct IoRequestList
{
    public IoRequest? Head;
    public IoRequest? Tail;
    public int Count;

    public void Append(IoRequest r)
    {
        r.Next = null;
        if (Tail == null) Head = r; else Tail.Next = r;
        Tail = r;
        Count++;
    }

    public void Prepend(IoRequest r)
    {
        r.Next = Head;
        Head = r;
        Tail ??= r;
        Count++;
    }

    public IoRequest? Take()
    {
        var r = Head;
        if (r == null) return null;
        Head = r.Next;
        if (Head == null) Tail = null;
        r.Next = null;
        Count--;
        return r;
    }
}
