using BlkTapCtrl.Protocol.XenStore;

namespace BlkTapCtrl.XenStore.Server;

/// <summary>What one or more edits did: nodes gained or lost per owning domain, and the watch events due.</summary>
internal sealed class EditLog
{
    public Dictionary<uint, int> NodeDelta { get; } = [];

    public List<(string Path, bool Removal)> Events { get; } = [];

    public void Clear()
    {
        NodeDelta.Clear();
        Events.Clear();
    }

    public void Created(uint owner) => NodeDelta[owner] = NodeDelta.GetValueOrDefault(owner) + 1;
}

/// <summary>
/// The store's operations on an immutable tree: each returns the new root (or the same root when nothing
/// changed) and records what it did in an <see cref="EditLog"/>. Paths are absolute and already validated.
/// The same operations serve direct requests, transactions and the replay of a transaction at commit.
/// </summary>
internal static class StoreTree
{
    public static string[] Segments(string path) => path == "/" ? [] : path[1..].Split('/');

    public static Node? Lookup(Node root, string path)
    {
        if (path == "/") return root;
        Node node = root;
        int start = 1;
        while (true)
        {
            int slash = path.IndexOf('/', start);
            var name = slash < 0 ? path[start..] : path[start..slash];
            if (!node.Children.TryGetValue(name, out var child)) return null;
            node = child;
            if (slash < 0) return node;
            start = slash + 1;
        }
    }

    /// <summary>WRITE: sets the value, creating missing parents (which inherit their parent's permissions).</summary>
    public static Node Write(Node root, string path, byte[] value, uint domId, EditLog log)
    {
        var result = Edit(root, path, createParents: true, domId, log, (existing, parent) =>
        {
            if (existing != null)
            {
                if (!existing.Allows(domId, XsAccess.Write)) throw Denied(path);
                return existing.WithValue(value);
            }
            if (!parent.Allows(domId, XsAccess.Write)) throw Denied(path);
            var created = Node.Create(value, Inherit(parent, domId));
            log.Created(created.Owner);
            return created;
        });
        log.Events.Add((path, false));
        return result;
    }

    /// <summary>MKDIR: makes the node exist; an existing node is left as it is (and fires nothing).</summary>
    public static Node Mkdir(Node root, string path, uint domId, EditLog log)
    {
        if (Lookup(root, path) is { } node)
        {
            if (!node.Allows(domId, XsAccess.Read)) throw Denied(path);
            return root;
        }
        var result = Edit(root, path, createParents: true, domId, log, (existing, parent) =>
        {
            if (!parent.Allows(domId, XsAccess.Write)) throw Denied(path);
            var created = Node.Create([], Inherit(parent, domId));
            log.Created(created.Owner);
            return created;
        });
        log.Events.Add((path, false));
        return result;
    }

    /// <summary>
    /// RM: removes the node and its subtree. Missing node with an existing parent: success, nothing fires.
    /// Missing parent: ENOENT. The root cannot be removed.
    /// </summary>
    public static Node Remove(Node root, string path, uint domId, EditLog log)
    {
        if (path == "/") throw new StoreError(XsError.EINVAL, "the root node cannot be removed");
        var node = Lookup(root, path);
        if (node == null)
        {
            if (Lookup(root, XsPath.Parent(path)) == null)
                throw new StoreError(XsError.ENOENT, $"neither {path} nor its parent exists");
            return root;
        }
        if (!node.Allows(domId, XsAccess.Write)) throw Denied(path);
        var removed = new Dictionary<uint, int>();
        node.CountByOwner(removed);
        foreach (var (owner, n) in removed) log.NodeDelta[owner] = log.NodeDelta.GetValueOrDefault(owner) - n;
        var result = Edit(root, path, createParents: false, domId, log, (_, _) => null);
        log.Events.Add((path, true));
        return result;
    }

    /// <summary>SET_PERMS: only dom0 or the owner may change a node's permissions.</summary>
    public static Node SetPermissions(Node root, string path, XsPermission[] permissions, uint domId, EditLog log)
    {
        var node = Lookup(root, path) ?? throw new StoreError(XsError.ENOENT, $"{path} does not exist");
        if (domId != 0 && node.Owner != domId) throw Denied(path);
        if (node.Owner != permissions[0].DomId)
        {
            log.NodeDelta[node.Owner] = log.NodeDelta.GetValueOrDefault(node.Owner) - 1;
            log.Created(permissions[0].DomId);
        }
        var result = path == "/"
            ? node.WithPermissions(permissions)
            : Edit(root, path, createParents: false, domId, log, (existing, _) => existing!.WithPermissions(permissions));
        log.Events.Add((path, false));
        return result;
    }

    private static XsPermission[] Inherit(Node parent, uint domId)
    {
        if (domId == 0 || parent.Owner == domId) return parent.Permissions;
        // A domain creating a node owns it; the rest of the parent's list carries over.
        var perms = (XsPermission[])parent.Permissions.Clone();
        perms[0] = perms[0] with { DomId = domId };
        return perms;
    }

    private static StoreError Denied(string path) => new(XsError.EACCES, $"no permission for {path}");

    /// <summary>
    /// Rebuilds the path from the root down to <paramref name="path"/> with the leaf replaced by
    /// <paramref name="change"/> (null removes it). Missing intermediate nodes are created, or ENOENT.
    /// </summary>
    private static Node Edit(Node root, string path, bool createParents, uint domId, EditLog log, Func<Node?, Node, Node?> change)
    {
        var segments = Segments(path);
        if (segments.Length == 0)
            return change(root, root) ?? throw new StoreError(XsError.EINVAL, "the root node cannot be removed");
        var chain = new Node[segments.Length];
        var fresh = new bool[segments.Length];
        chain[0] = root;
        for (int i = 0; i < segments.Length - 1; i++)
        {
            var parent = chain[i];
            if (parent.Children.TryGetValue(segments[i], out var child))
            {
                chain[i + 1] = child;
                continue;
            }
            if (!createParents)
                throw new StoreError(XsError.ENOENT, $"{path} does not exist");
            if (!parent.Allows(domId, XsAccess.Write)) throw Denied(path);
            var created = Node.Create([], Inherit(parent, domId));
            log.Created(created.Owner);
            chain[i + 1] = created;
            fresh[i + 1] = true;
        }
        var leafParent = chain[^1];
        leafParent.Children.TryGetValue(segments[^1], out var existing);
        var replacement = change(existing, leafParent);
        if (ReferenceEquals(replacement, existing)) return root;

        Node? newChild = replacement;
        Node? oldChild = existing;
        for (int i = segments.Length - 1; i >= 0; i--)
        {
            var parent = chain[i];
            var rebuilt = parent.WithChild(segments[i], oldChild, newChild);
            newChild = rebuilt;
            oldChild = fresh[i] ? null : parent;
        }
        return newChild!;
    }
}
