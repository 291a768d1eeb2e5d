using System.Globalization;
using System.Text;
using BlkTapCtrl.Protocol.XenStore;

namespace BlkTapCtrl.XenStore.Server;

/// <summary>
/// The store: the tree, transactions, watches and domains, answering one request at a time under a single
/// lock (requests are microseconds; a lock keeps every client's view consistent and the code obvious).
/// Replies and events are queued on the sessions, never written to sockets under the lock; after it, the
/// events go out to the watching sessions at once without blocking (a client whose socket is full gets the
/// rest from its own writer), so a slow client cannot stall the engine or the others. A rejected request
/// changes nothing.
/// </summary>
public sealed partial class StoreEngine
{
    private readonly object _lock = new();
    private readonly StoreQuotas _quotas;
    private readonly Action<string> _log;
    private readonly WatchRegistry _watches = new();
    private readonly HashSet<uint> _introduced = [];
    private readonly Dictionary<uint, int> _nodesPerDomain = [];
    private readonly EditLog _edit = new();
    private readonly EditLog _scratchEdit = new();
    private readonly byte[] _reply = new byte[XsLimits.PayloadMax];
    [ThreadStatic] private static List<ClientSession>? t_toSend;
    private Node _root;
    private uint _lastTransactionId;
    private long _changeCount;

    /// <param name="log">Receives one line per notable event (disconnects, CONTROL print).</param>
    public StoreEngine(StoreQuotas? quotas = null, Action<string>? log = null)
        : this(null, quotas, log)
    {
    }

    internal StoreEngine(Node? root, StoreQuotas? quotas, Action<string>? log)
    {
        _quotas = quotas ?? new StoreQuotas();
        _log = log ?? (_ => { });
        _root = root ?? Node.Create([], [new XsPermission(XsAccess.None, 0)]);
        var boot = new EditLog();
        // dom0's identity as the toolstack leaves it: the controller finds dom0 by scanning for name Domain-0.
        _root = StoreTree.Write(_root, "/local/domain/0/domid", "0"u8.ToArray(), 0, boot);
        _root = StoreTree.Write(_root, "/local/domain/0/name", "Domain-0"u8.ToArray(), 0, boot);
        var counts = new Dictionary<uint, int>();
        _root.CountByOwner(counts);
        foreach (var (d, n) in counts) _nodesPerDomain[d] = n;
    }

    /// <summary>Grows by one with every committed change; the state file writer uses it to see when to save.</summary>
    public long ChangeCount => Interlocked.Read(ref _changeCount);

    /// <summary>Number of watches registered by all clients.</summary>
    public int WatchCount { get { lock (_lock) return _watches.Count; } }

    internal Node Root { get { lock (_lock) return _root; } }

    /// <summary>Answers one request from <paramref name="session"/>: exactly one reply, then any watch events.</summary>
    /// <remarks>
    /// The reply, and events for <paramref name="session"/> itself, stay queued: its reader sends them after
    /// the batch of requests it is handling, in one write. Other watchers get their events here, each in one
    /// write, before this returns.
    /// </remarks>
    public void Handle(ClientSession session, XsHeader header, ReadOnlySpan<byte> payload)
    {
        var toSend = t_toSend ??= [];
        lock (_lock)
        {
            _edit.Clear();
            bool sent;
            try
            {
                int length = Execute(session, header, payload);
                sent = session.Send(header with { Length = (uint)length }, _reply.AsSpan(0, length));
            }
            catch (StoreError e)
            {
                _edit.Clear();
                _pendingInitial = null;
                var error = XsErrors.Payload(e.Error);
                sent = session.Send(new XsHeader(XsMessageType.Error, header.RequestId, header.TransactionId, (uint)error.Length), error);
            }
            if (!sent) session.RequestDisconnect("its replies are not being read (output queue full)");
            if (_pendingInitial is { } watch)
            {
                _pendingInitial = null;
                _watches.FireInitial(watch);
            }
            foreach (var (path, removal) in _edit.Events) _watches.Fire(path, removal);
            _edit.Clear();
            foreach (var watcher in _watches.AwaitingSend)
            {
                watcher.AwaitingSend = false;
                if (watcher != session) toSend.Add(watcher);
            }
            _watches.AwaitingSend.Clear();
        }
        foreach (var watcher in toSend) watcher.SendQueuedNow();
        toSend.Clear();
    }

    /// <summary>Forgets a client: its watches go and its open transactions are discarded.</summary>
    public void Disconnect(ClientSession session)
    {
        lock (_lock)
        {
            _watches.RemoveAll(session);
            session.Transactions.Clear();
        }
    }

    private int Execute(ClientSession s, XsHeader h, ReadOnlySpan<byte> payload)
    {
        switch (h.Type)
        {
            case XsMessageType.Read: return Read(s, h, payload);
            case XsMessageType.Write: return Write(s, h, payload);
            case XsMessageType.Mkdir: return Mkdir(s, h, payload);
            case XsMessageType.Rm: return Remove(s, h, payload);
            case XsMessageType.Directory: return Directory(s, h, payload);
            case XsMessageType.DirectoryPart: return DirectoryPart(s, h, payload);
            case XsMessageType.GetPerms: return GetPermissions(s, h, payload);
            case XsMessageType.SetPerms: return SetPermissions(s, h, payload);
            case XsMessageType.Watch: return AddWatch(s, payload);
            case XsMessageType.Unwatch: return RemoveWatch(s, payload);
            case XsMessageType.ResetWatches: return ResetWatches(s);
            case XsMessageType.TransactionStart: return StartTransaction(s, h);
            case XsMessageType.TransactionEnd: return EndTransaction(s, h, payload);
            case XsMessageType.Introduce: return Introduce(s, payload);
            case XsMessageType.Release: return Release(s, payload);
            case XsMessageType.Resume: return Resume(s, payload);
            case XsMessageType.SetTarget: return SetTarget(s, payload);
            case XsMessageType.IsDomainIntroduced: return IsIntroduced(payload);
            case XsMessageType.GetDomainPath: return DomainPath(payload);
            case XsMessageType.Control: return Control(s, payload);
            default:
                throw new StoreError(XsError.EINVAL, $"{XsMessageTypes.Name(h.Type)} is not a request");
        }
    }

    // ---- node operations ----

    private int Read(ClientSession s, XsHeader h, ReadOnlySpan<byte> payload)
    {
        var path = PathArgument(s, XsPayload.SingleArgument(payload));
        var node = LookupFor(s, h, path);
        if (!node.Allows(s.DomId, XsAccess.Read)) throw Denied(path);
        node.Value.CopyTo(_reply, 0);
        return node.Value.Length;
    }

    private int Write(ClientSession s, XsHeader h, ReadOnlySpan<byte> payload)
    {
        if (!XsPayload.TrySplitFirst(payload, out var rawPath, out var value))
            throw new StoreError(XsError.EINVAL, "WRITE needs path NUL value");
        var path = PathArgument(s, rawPath);
        if (value.Length > _quotas.NodeSize)
            throw new StoreError(XsError.ENOSPC, $"value of {value.Length} bytes exceeds the node size quota {_quotas.NodeSize}");
        var bytes = value.ToArray();
        Change(s, h, new TransactionChange(ChangeKind.Write, path, bytes, null));
        return Ok();
    }

    private int Mkdir(ClientSession s, XsHeader h, ReadOnlySpan<byte> payload)
    {
        var path = PathArgument(s, XsPayload.SingleArgument(payload));
        Change(s, h, new TransactionChange(ChangeKind.Mkdir, path, null, null));
        return Ok();
    }

    private int Remove(ClientSession s, XsHeader h, ReadOnlySpan<byte> payload)
    {
        var path = PathArgument(s, XsPayload.SingleArgument(payload));
        Change(s, h, new TransactionChange(ChangeKind.Remove, path, null, null));
        return Ok();
    }

    private int SetPermissions(ClientSession s, XsHeader h, ReadOnlySpan<byte> payload)
    {
        if (!XsPayload.TrySplitFirst(payload, out var rawPath, out var rest))
            throw new StoreError(XsError.EINVAL, "SET_PERMS needs path NUL permissions");
        var path = PathArgument(s, rawPath);
        XsPermission[] perms;
        try
        {
            perms = [.. XsPayload.Permissions(rest)];
        }
        catch (XsProtocolException e)
        {
            throw new StoreError(XsError.EINVAL, e.Message);
        }
        Change(s, h, new TransactionChange(ChangeKind.SetPermissions, path, null, perms));
        return Ok();
    }

    private int GetPermissions(ClientSession s, XsHeader h, ReadOnlySpan<byte> payload)
    {
        var path = PathArgument(s, XsPayload.SingleArgument(payload));
        var node = LookupFor(s, h, path);
        if (!node.Allows(s.DomId, XsAccess.Read)) throw Denied(path);
        int n = 0;
        foreach (var p in node.Permissions)
        {
            n += Encoding.ASCII.GetBytes(p.ToString(), _reply.AsSpan(n));
            _reply[n++] = 0;
        }
        return n;
    }

    private int Directory(ClientSession s, XsHeader h, ReadOnlySpan<byte> payload)
    {
        var path = PathArgument(s, XsPayload.SingleArgument(payload));
        var node = LookupFor(s, h, path);
        if (!node.Allows(s.DomId, XsAccess.Read)) throw Denied(path);
        int n = 0;
        foreach (var name in node.Children.Keys)
        {
            if (n + name.Length + 1 > _reply.Length)
                throw new StoreError(XsError.E2BIG, $"the child list of {path} exceeds one reply; use DIRECTORY_PART");
            n += Encoding.UTF8.GetBytes(name, _reply.AsSpan(n));
            _reply[n++] = 0;
        }
        return n;
    }

    private int DirectoryPart(ClientSession s, XsHeader h, ReadOnlySpan<byte> payload)
    {
        var args = Arguments(payload, 2, "DIRECTORY_PART needs path and offset");
        var path = ResolvePath(s, args[0]);
        if (!int.TryParse(args[1], NumberStyles.None, CultureInfo.InvariantCulture, out int offset))
            throw new StoreError(XsError.EINVAL, $"DIRECTORY_PART offset '{args[1]}' is not a decimal number");
        var node = LookupFor(s, h, path);
        if (!node.Allows(s.DomId, XsAccess.Read)) throw Denied(path);
        int n = Encoding.ASCII.GetBytes(node.Version.ToString(CultureInfo.InvariantCulture), _reply);
        _reply[n++] = 0;
        int position = 0;
        bool complete = true;
        foreach (var name in node.Children.Keys)
        {
            int size = Encoding.UTF8.GetByteCount(name) + 1;
            if (position >= offset)
            {
                // Keep one byte for the empty string that marks the end of the list.
                if (n + size + 1 > _reply.Length) { complete = false; break; }
                n += Encoding.UTF8.GetBytes(name, _reply.AsSpan(n));
                _reply[n++] = 0;
            }
            position += size;
        }
        if (offset > position && complete)
            throw new StoreError(XsError.EINVAL, $"DIRECTORY_PART offset {offset} is beyond the list ({position} bytes)");
        if (complete) _reply[n++] = 0;
        return n;
    }

    /// <summary>A change goes to the caller's transaction, or straight to the store (with quotas and events).</summary>
    private void Change(ClientSession s, XsHeader h, TransactionChange change)
    {
        if (h.TransactionId != 0)
        {
            var tx = Transaction(s, h.TransactionId);
            tx.Observe(change.Path);
            if (change.Kind == ChangeKind.Remove) tx.Observe(XsPath.Parent(change.Path));
            _scratchEdit.Clear();
            var root = Apply(tx.Root, change, s.DomId, _scratchEdit);
            tx.Root = root;
            tx.Changes.Add(change);
            return;
        }
        var candidate = Apply(_root, change, s.DomId, _edit);
        Publish(candidate);
    }

    private static Node Apply(Node root, TransactionChange change, uint domId, EditLog log) => change.Kind switch
    {
        ChangeKind.Write => StoreTree.Write(root, change.Path, change.Value!, domId, log),
        ChangeKind.Mkdir => StoreTree.Mkdir(root, change.Path, domId, log),
        ChangeKind.Remove => StoreTree.Remove(root, change.Path, domId, log),
        _ => StoreTree.SetPermissions(root, change.Path, change.Permissions!, domId, log),
    };

    /// <summary>Makes <paramref name="candidate"/> the store if the node quotas allow what <see cref="_edit"/> recorded.</summary>
    private void Publish(Node candidate)
    {
        foreach (var (domain, delta) in _edit.NodeDelta)
        {
            if (delta > 0 && _nodesPerDomain.GetValueOrDefault(domain) + delta > _quotas.NodesPerDomain)
                throw new StoreError(XsError.ENOSPC, $"domain {domain} would own more than {_quotas.NodesPerDomain} nodes");
        }
        foreach (var (domain, delta) in _edit.NodeDelta)
            _nodesPerDomain[domain] = _nodesPerDomain.GetValueOrDefault(domain) + delta;
        if (!ReferenceEquals(candidate, _root))
        {
            _root = candidate;
            Interlocked.Increment(ref _changeCount);
        }
    }

    private Node LookupFor(ClientSession s, XsHeader h, string path)
    {
        if (h.TransactionId != 0)
        {
            var tx = Transaction(s, h.TransactionId);
            tx.Observe(path);
            return StoreTree.Lookup(tx.Root, path) ?? throw new StoreError(XsError.ENOENT, $"{path} does not exist");
        }
        return StoreTree.Lookup(_root, path) ?? throw new StoreError(XsError.ENOENT, $"{path} does not exist");
    }

    // ---- transactions ----

    private int StartTransaction(ClientSession s, XsHeader h)
    {
        if (h.TransactionId != 0)
            throw new StoreError(XsError.EBUSY, "TRANSACTION_START must not carry a transaction id");
        if (s.Transactions.Count >= _quotas.TransactionsPerConnection)
            throw new StoreError(XsError.ENOSPC, $"connection has {_quotas.TransactionsPerConnection} transactions open (quota)");
        uint id;
        do { id = ++_lastTransactionId; } while (id == 0 || s.Transactions.ContainsKey(id));
        s.Transactions[id] = new StoreTransaction(id, _root);
        int n = Encoding.ASCII.GetBytes(id.ToString(CultureInfo.InvariantCulture), _reply);
        _reply[n++] = 0;
        return n;
    }

    private int EndTransaction(ClientSession s, XsHeader h, ReadOnlySpan<byte> payload)
    {
        var arg = XsPayload.SingleArgument(payload);
        bool commit = arg.SequenceEqual("T"u8);
        if (!commit && !arg.SequenceEqual("F"u8))
            throw new StoreError(XsError.EINVAL, "TRANSACTION_END takes T or F");
        var tx = Transaction(s, h.TransactionId);
        s.Transactions.Remove(tx.Id);
        if (!commit || tx.Changes.Count == 0) return Ok();
        foreach (var (path, version) in tx.Observed)
        {
            if ((StoreTree.Lookup(_root, path)?.Version ?? -1) != version)
                throw new StoreError(XsError.EAGAIN, $"transaction {tx.Id}: {path} changed since it started");
        }
        var candidate = _root;
        foreach (var change in tx.Changes) candidate = Apply(candidate, change, s.DomId, _edit);
        Publish(candidate);
        return Ok();
    }

    private static StoreTransaction Transaction(ClientSession s, uint id) =>
        s.Transactions.TryGetValue(id, out var tx) ? tx : throw new StoreError(XsError.ENOENT, $"transaction {id} does not exist");

    // ---- watches ----

    private int AddWatch(ClientSession s, ReadOnlySpan<byte> payload)
    {
        var args = Arguments(payload, 2, "WATCH needs path and token");
        var requested = args[0];
        var absolute = XsPath.IsSpecial(requested) ? requested : ResolvePath(s, requested);
        if (_watches.Contains(s, absolute, args[1]))
            throw new StoreError(XsError.EEXIST, $"watch {requested} with token {args[1]} already exists");
        if (s.WatchCount >= _quotas.WatchesPerConnection)
            throw new StoreError(XsError.ENOSPC, $"connection has {_quotas.WatchesPerConnection} watches (quota)");
        var watch = new Watch(s, absolute, requested, args[1]);
        _watches.Add(watch);
        int n = Ok();
        // The initial event must follow the reply: queue it behind it via the event list.
        _pendingInitial = watch;
        return n;
    }

    private int RemoveWatch(ClientSession s, ReadOnlySpan<byte> payload)
    {
        var args = Arguments(payload, 2, "UNWATCH needs path and token");
        var absolute = XsPath.IsSpecial(args[0]) ? args[0] : ResolvePath(s, args[0]);
        if (!_watches.Remove(s, absolute, args[1]))
            throw new StoreError(XsError.ENOENT, $"no watch {args[0]} with token {args[1]}");
        return Ok();
    }

    private int ResetWatches(ClientSession s)
    {
        _watches.RemoveAll(s);
        s.Transactions.Clear();
        return Ok();
    }

    // ---- helpers ----

    private int Ok()
    {
        XsPayload.Ok.CopyTo(_reply);
        return XsPayload.Ok.Length;
    }

    private static StoreError Denied(string path) => new(XsError.EACCES, $"no permission for {path}");

    private static string PathArgument(ClientSession s, ReadOnlySpan<byte> raw)
    {
        var problem = XsPath.Problem(raw);
        if (problem != null) throw new StoreError(XsError.EINVAL, problem);
        return Absolute(s, Encoding.ASCII.GetString(raw));
    }

    private static string ResolvePath(ClientSession s, string raw)
    {
        var problem = XsPath.Problem(raw);
        if (problem != null) throw new StoreError(XsError.EINVAL, problem);
        return Absolute(s, raw);
    }

    private static string Absolute(ClientSession s, string path)
    {
        if (path[0] == '/') return path;
        var absolute = s.Home + "/" + path;
        if (absolute.Length > XsLimits.AbsolutePathMax)
            throw new StoreError(XsError.EINVAL, $"path resolves to {absolute.Length} bytes; the limit is {XsLimits.AbsolutePathMax}");
        return absolute;
    }

    /// <summary>Splits NUL-terminated arguments (the last NUL may be missing); fewer than needed is EINVAL.</summary>
    private static List<string> Arguments(ReadOnlySpan<byte> payload, int needed, string usage)
    {
        var args = XsPayload.Strings(payload, allowUnterminatedLast: true);
        if (args.Count < needed) throw new StoreError(XsError.EINVAL, usage);
        return args;
    }
}
