using BlkTapCtrl.Protocol.XenStore;

namespace BlkTapCtrl.XenStore.Server;

/// <summary>
/// An open transaction: a private root that starts as the snapshot of the store, the versions of every node
/// it looked at (as they were in the snapshot) and the changes it made, replayed onto the store at commit
/// if none of those nodes changed meanwhile.
/// </summary>
internal sealed class StoreTransaction(uint id, Node snapshot)
{
    public uint Id { get; } = id;

    public Node Snapshot { get; } = snapshot;

    public Node Root { get; set; } = snapshot;

    /// <summary>Path → version in the snapshot (−1: absent). A commit fails with EAGAIN if any differs now.</summary>
    public Dictionary<string, long> Observed { get; } = new(StringComparer.Ordinal);

    public List<TransactionChange> Changes { get; } = [];

    public void Observe(string path)
    {
        if (!Observed.ContainsKey(path))
            Observed[path] = StoreTree.Lookup(Snapshot, path)?.Version ?? -1;
    }
}

internal enum ChangeKind { Write, Mkdir, Remove, SetPermissions }

internal readonly record struct TransactionChange(ChangeKind Kind, string Path, byte[]? Value, XsPermission[]? Permissions);
