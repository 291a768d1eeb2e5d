using System.Buffers;
using System.Text;
using BlkTapCtrl.Protocol.XenStore;

namespace BlkTapCtrl.XenStore.Client;

/// <summary>
/// The node operations shared by the client (outside any transaction) and by a
/// <see cref="XenStoreTransaction"/> (inside it). Paths are absolute, or relative to the connection's
/// domain home (<c>/local/domain/0</c> for a dom0 socket client). Values are bytes; the string overloads
/// use UTF-8 and never add a NUL (write a byte array to store one).
/// </summary>
public abstract class XenStoreOperations
{
    private protected XenStoreOperations() { }

    private protected abstract XenStoreClient Owner { get; }

    /// <summary>The tx_id this object sends: 0 for the client itself.</summary>
    public abstract uint TransactionId { get; }

    /// <summary>READ: the node's value as UTF-8 text. Throws <see cref="XenStoreException"/> (ENOENT) when missing.</summary>
    public async Task<string> ReadAsync(string path, CancellationToken ct = default) =>
        Encoding.UTF8.GetString(await ReadBytesAsync(path, ct).ConfigureAwait(false));

    /// <summary>READ: the node's value, or null when the node does not exist.</summary>
    public async Task<string?> TryReadAsync(string path, CancellationToken ct = default)
    {
        try
        {
            return await ReadAsync(path, ct).ConfigureAwait(false);
        }
        catch (XenStoreException e) when (e.Error == XsError.ENOENT)
        {
            return null;
        }
    }

    /// <summary>READ: the node's raw value.</summary>
    public async Task<byte[]> ReadBytesAsync(string path, CancellationToken ct = default)
    {
        var reply = await PathRequestAsync(XsMessageType.Read, path, ct).ConfigureAwait(false);
        return reply.Payload;
    }

    /// <summary>WRITE: stores <paramref name="value"/> (UTF-8, no NUL added), creating missing parents.</summary>
    public Task WriteAsync(string path, string value, CancellationToken ct = default)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        return WriteAsync(path, bytes, ct);
    }

    /// <summary>WRITE: stores raw bytes, creating missing parents with empty values.</summary>
    public Task WriteAsync(string path, ReadOnlyMemory<byte> value, CancellationToken ct = default)
    {
        CheckPath(path);
        return SendFrameAsync(XsMessageType.Write, path, null, value.Span, ct);
    }

    /// <summary>MKDIR: makes the node and its parents exist; existing values are kept.</summary>
    public Task MkdirAsync(string path, CancellationToken ct = default) =>
        PathRequestAsync(XsMessageType.Mkdir, path, ct);

    /// <summary>
    /// RM: removes the node and everything below it. A missing node is fine when its parent exists;
    /// otherwise ENOENT.
    /// </summary>
    public Task RemoveAsync(string path, CancellationToken ct = default) =>
        PathRequestAsync(XsMessageType.Rm, path, ct);

    /// <summary>
    /// DIRECTORY: the names (not paths) of the node's children. Lists too long for one reply (E2BIG) are
    /// fetched with DIRECTORY_PART and retried until the node's generation is stable.
    /// </summary>
    public async Task<IReadOnlyList<string>> DirectoryAsync(string path, CancellationToken ct = default)
    {
        try
        {
            var reply = await PathRequestAsync(XsMessageType.Directory, path, ct).ConfigureAwait(false);
            return XsPayload.Strings(reply.Payload);
        }
        catch (XenStoreException e) when (e.Error == XsError.E2BIG)
        {
            return await DirectoryInPartsAsync(path, ct).ConfigureAwait(false);
        }
    }

    /// <summary>True when the node exists (its directory can be listed, as libxenstore's callers test it).</summary>
    public async Task<bool> ExistsAsync(string path, CancellationToken ct = default)
    {
        try
        {
            await PathRequestAsync(XsMessageType.Directory, path, ct).ConfigureAwait(false);
            return true;
        }
        catch (XenStoreException e) when (e.Error is XsError.ENOENT or XsError.E2BIG)
        {
            return e.Error == XsError.E2BIG;
        }
    }

    /// <summary>GET_PERMS: owner-and-default entry first, then per-domain entries.</summary>
    public async Task<IReadOnlyList<XsPermission>> GetPermissionsAsync(string path, CancellationToken ct = default)
    {
        var reply = await PathRequestAsync(XsMessageType.GetPerms, path, ct).ConfigureAwait(false);
        return XsPayload.Permissions(reply.Payload);
    }

    /// <summary>SET_PERMS: replaces the node's permission list (the first entry names the owner).</summary>
    public Task SetPermissionsAsync(string path, IReadOnlyList<XsPermission> permissions, CancellationToken ct = default)
    {
        if (permissions.Count == 0)
            throw new ArgumentException("a permission list needs at least the owner entry", nameof(permissions));
        var args = new string[permissions.Count + 1];
        args[0] = path;
        for (int i = 0; i < permissions.Count; i++) args[i + 1] = permissions[i].ToString();
        CheckPath(path);
        return RequestAsync(XsMessageType.SetPerms, args, ct);
    }

    /// <summary>
    /// Sends any request whose payload is NUL-terminated strings (e.g. CONTROL, GET_DOMAIN_PATH) with this
    /// object's tx_id and returns the reply; an ERROR reply throws <see cref="XenStoreException"/>.
    /// </summary>
    public Task<XenStoreReply> RequestAsync(XsMessageType type, IReadOnlyList<string> arguments, CancellationToken ct = default) =>
        SendFrameAsync(type, null, arguments, default, ct);

    /// <summary>Sends a request with an arbitrary payload (for tools and tests); an ERROR reply throws.</summary>
    public Task<XenStoreReply> RequestAsync(XsMessageType type, ReadOnlySpan<byte> payload, CancellationToken ct = default) =>
        SendFrameAsync(type, null, null, payload, ct);

    /// <summary>
    /// Builds one frame with this object's tx_id — <paramref name="path"/> and then each of
    /// <paramref name="arguments"/> NUL-terminated, then <paramref name="raw"/> as is — in a pooled buffer
    /// whose ownership passes to the connection, and sends it. The path (or first argument) names the
    /// request in errors.
    /// </summary>
    private Task<XenStoreReply> SendFrameAsync(XsMessageType type, string? path, IReadOnlyList<string>? arguments,
        ReadOnlySpan<byte> raw, CancellationToken ct)
    {
        var client = Owner;
        var connection = client.Connection();
        uint id = connection.NextRequestId();
        var frame = ArrayPool<byte>.Shared.Rent(XsLimits.FrameMax);
        int length;
        try
        {
            var b = new XsFrameBuilder(frame, type, id, TransactionId);
            if (path != null)
                b.StringNul(path);
            if (arguments != null)
                for (int i = 0; i < arguments.Count; i++)
                    b.StringNul(arguments[i]);
            b.Bytes(raw);
            length = b.Finish();
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(frame);
            throw;
        }
        var named = path ?? (arguments is { Count: > 0 } ? arguments[0] : null);
        return client.CompleteAsync(connection, frame, length, id, type, named, ct);
    }

    private async Task<IReadOnlyList<string>> DirectoryInPartsAsync(string path, CancellationToken ct)
    {
        for (int attempt = 0; attempt < 100; attempt++)
        {
            var all = new List<string>();
            string? generation = null;
            bool changed = false;
            while (true)
            {
                int offset = 0;
                foreach (var name in all) offset += Encoding.UTF8.GetByteCount(name) + 1;
                var reply = await RequestAsync(XsMessageType.DirectoryPart,
                    [path, offset.ToString(System.Globalization.CultureInfo.InvariantCulture)], ct).ConfigureAwait(false);
                var (gen, children, complete) = XsPayload.DirectoryPart(reply.Payload);
                if (generation != null && gen != generation) { changed = true; break; }
                generation = gen;
                all.AddRange(children);
                if (complete || children.Count == 0) break;
            }
            if (!changed) return all;
        }
        throw new XenStoreException(XsError.EAGAIN, XsMessageType.DirectoryPart, path);
    }

    private protected Task<XenStoreReply> PathRequestAsync(XsMessageType type, string path, CancellationToken ct)
    {
        CheckPath(path);
        return SendFrameAsync(type, path, null, default, ct);
    }

    private static void CheckPath(string path)
    {
        var problem = XsPath.Problem(path);
        if (problem != null)
            throw new ArgumentException($"invalid xenstore path '{path}': {problem}", nameof(path));
    }
}
