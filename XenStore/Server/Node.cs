using System.Collections.Immutable;
using BlkTapCtrl.Protocol.XenStore;

namespace BlkTapCtrl.XenStore.Server;

/// <summary>
/// One immutable node of the store. Changing a node builds new nodes along its path and shares the rest,
/// so a transaction's snapshot is just a root reference. <see cref="Version"/> changes only when this node's
/// own state changes (value, permissions, set of child names), not when something deeper changes: it is
/// what a transaction's commit compares to detect conflicts.
/// </summary>
internal sealed class Node
{
    public static readonly ImmutableSortedDictionary<string, Node> NoChildren =
        ImmutableSortedDictionary.Create<string, Node>(StringComparer.Ordinal);

    private static long s_lastVersion;

    public Node(byte[] value, XsPermission[] permissions, ImmutableSortedDictionary<string, Node> children, long version)
    {
        Value = value;
        Permissions = permissions;
        Children = children;
        Version = version;
    }

    public byte[] Value { get; }

    /// <summary>Never empty: entry 0 is the owner and the default access of everyone else.</summary>
    public XsPermission[] Permissions { get; }

    public ImmutableSortedDictionary<string, Node> Children { get; }

    public long Version { get; }

    public uint Owner => Permissions[0].DomId;

    public static long NextVersion() => Interlocked.Increment(ref s_lastVersion);

    public static Node Create(byte[] value, XsPermission[] permissions) => new(value, permissions, NoChildren, NextVersion());

    public Node WithValue(byte[] value) => new(value, Permissions, Children, NextVersion());

    public Node WithPermissions(XsPermission[] permissions) => new(Value, permissions, Children, NextVersion());

    /// <summary>Replaces, adds or (with null) removes a child; the version moves only if the child set changes.</summary>
    public Node WithChild(string name, Node? oldChild, Node? newChild)
    {
        var children = newChild == null ? Children.Remove(name) : Children.SetItem(name, newChild);
        bool setChanged = (oldChild == null) != (newChild == null);
        return new Node(Value, Permissions, children, setChanged ? NextVersion() : Version);
    }

    /// <summary>Whether <paramref name="domId"/> may do <paramref name="access"/> here (dom0 and the owner always may).</summary>
    public bool Allows(uint domId, XsAccess access)
    {
        if (domId == 0 || Owner == domId) return true;
        for (int i = 1; i < Permissions.Length; i++)
        {
            if (Permissions[i].DomId == domId)
                return (Permissions[i].Access & access) == access;
        }
        return (Permissions[0].Access & access) == access;
    }

    /// <summary>Number of nodes in this subtree, per owning domain (for node quotas when a subtree goes).</summary>
    public void CountByOwner(Dictionary<uint, int> counts)
    {
        counts[Owner] = counts.GetValueOrDefault(Owner) + 1;
        foreach (var child in Children.Values) child.CountByOwner(counts);
    }
}
