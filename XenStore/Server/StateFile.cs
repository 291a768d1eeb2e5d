using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Text;
using BlkTapCtrl.Protocol.XenStore;

namespace BlkTapCtrl.XenStore.Server;

/// <summary>
/// The tree on disk, so a restarted daemon keeps its contents. Layout (little-endian): magic
/// <c>"BTXSTATE"</c>, version u32 = 1, then depth-first records: path length u16, path, permission count
/// u16, per permission (access u8, domid u16), value length u32, value. Written to a temporary file,
/// fsynced and renamed over the old one, so a crash leaves either the old or the new state, never a mix.
/// </summary>
internal static class StateFile
{
    private static ReadOnlySpan<byte> Magic => "BTXSTATE"u8;

    public static void Save(Node root, string path)
    {
        var temp = path + ".tmp";
        using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 64 * 1024))
        {
            using var w = new BinaryWriter(file, Encoding.UTF8, leaveOpen: true);
            w.Write(Magic);
            w.Write(1u);
            WriteNode(w, "/", root);
            w.Flush();
            file.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: true);
    }

    private static void WriteNode(BinaryWriter w, string path, Node node)
    {
        var pathBytes = Encoding.UTF8.GetBytes(path);
        w.Write((ushort)pathBytes.Length);
        w.Write(pathBytes);
        w.Write((ushort)node.Permissions.Length);
        foreach (var p in node.Permissions)
        {
            w.Write((byte)p.Access);
            w.Write((ushort)p.DomId);
        }
        w.Write((uint)node.Value.Length);
        w.Write(node.Value);
        foreach (var (name, child) in node.Children)
            WriteNode(w, path == "/" ? "/" + name : path + "/" + name, child);
    }

    /// <summary>Reads a state file; any inconsistency is an <see cref="InvalidDataException"/> naming the offset and field.</summary>
    public static Node Load(string path)
    {
        var data = File.ReadAllBytes(path);
        var span = data.AsSpan();
        if (span.Length < 12 || !span[..8].SequenceEqual(Magic))
            throw new InvalidDataException($"{path}: not a xenstored state file (magic missing)");
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(span[8..]);
        if (version != 1) throw new InvalidDataException($"{path}: state file version {version} is not supported");
        int offset = 12;
        var nodes = new List<(string Path, byte[] Value, XsPermission[] Perms)>();
        while (offset < span.Length)
        {
            int start = offset;
            ushort pathLength = Read16(span, ref offset, path, "path length");
            var nodePath = Encoding.UTF8.GetString(Take(span, ref offset, pathLength, path, "path"));
            if (!XsPath.IsValid(nodePath) || nodePath[0] != '/')
                throw new InvalidDataException($"{path}: record at offset {start} has invalid path '{nodePath}'");
            ushort permCount = Read16(span, ref offset, path, "permission count");
            if (permCount == 0) throw new InvalidDataException($"{path}: node {nodePath} has no permissions");
            var perms = new XsPermission[permCount];
            for (int i = 0; i < permCount; i++)
            {
                byte access = Take(span, ref offset, 1, path, "permission access")[0];
                if (access > 3) throw new InvalidDataException($"{path}: node {nodePath} has permission access {access}");
                perms[i] = new XsPermission((XsAccess)access, Read16(span, ref offset, path, "permission domid"));
            }
            int valueLength = (int)BinaryPrimitives.ReadUInt32LittleEndian(Take(span, ref offset, 4, path, "value length"));
            var value = Take(span, ref offset, valueLength, path, "value").ToArray();
            nodes.Add((nodePath, value, perms));
        }
        if (nodes.Count == 0 || nodes[0].Path != "/")
            throw new InvalidDataException($"{path}: the first record must be the root");
        // Records are depth-first, so building bottom-up from a path-sorted list is straightforward.
        var root = Build(nodes, 0, out int consumed);
        if (consumed != nodes.Count)
            throw new InvalidDataException($"{path}: node {nodes[consumed].Path} is out of order or has no parent record");
        return root;
    }

    private static Node Build(List<(string Path, byte[] Value, XsPermission[] Perms)> nodes, int index, out int next)
    {
        var (path, value, perms) = nodes[index];
        var children = ImmutableSortedDictionary.CreateBuilder<string, Node>(StringComparer.Ordinal);
        next = index + 1;
        while (next < nodes.Count && XsPath.Parent(nodes[next].Path) == path)
        {
            var childPath = nodes[next].Path;
            var child = Build(nodes, next, out next);
            children[childPath[(childPath.LastIndexOf('/') + 1)..]] = child;
        }
        return new Node(value, perms, children.ToImmutable(), Node.NextVersion());
    }

    private static ushort Read16(ReadOnlySpan<byte> span, ref int offset, string file, string field) =>
        BinaryPrimitives.ReadUInt16LittleEndian(Take(span, ref offset, 2, file, field));

    private static ReadOnlySpan<byte> Take(ReadOnlySpan<byte> span, ref int offset, int count, string file, string field)
    {
        if (count < 0 || offset + count > span.Length)
            throw new InvalidDataException($"{file}: truncated at offset {offset} reading {field} ({count} bytes)");
        var slice = span.Slice(offset, count);
        offset += count;
        return slice;
    }
}
