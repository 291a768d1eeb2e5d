namespace BlkTapCtrl.Worker.Vbd;

/// <summary>Intrusive doubly linked list of vreqs: moving a request between queues allocates nothing.</summary>
internal sealed class VbdRequestList(string name)
{
    public string Name { get; } = name;
    public VbdRequest? Head { get; private set; }
    public VbdRequest? Tail { get; private set; }
    public int Count { get; private set; }
    public bool IsEmpty => Count == 0;

    public void Append(VbdRequest r)
    {
        r.List?.Remove(r);
        r.List = this;
        r.Prev = Tail;
        r.Next = null;
        if (Tail == null) Head = r; else Tail.Next = r;
        Tail = r;
        Count++;
    }

    public void Remove(VbdRequest r)
    {
        if (r.List != this)
            throw new InvalidOperationException($"request {r.Slot} is on '{r.List?.Name}', not '{Name}'");
        if (r.Prev == null) Head = r.Next; else r.Prev.Next = r.Next;
        if (r.Next == null) Tail = r.Prev; else r.Next.Prev = r.Prev;
        r.Prev = r.Next = null;
        r.List = null;
        Count--;
    }
}
