using System.Text;
using BlkTapCtrl.Protocol.XenStore;

namespace BlkTapCtrl.XenStore.Server;

/// <summary>A registered watch: absolute (or special) path it matches, and how the client named it.</summary>
internal sealed record Watch(ClientSession Session, string AbsolutePath, string RequestedPath, string Token)
{
    /// <summary>Registered with a relative path: event paths are reported relative to the client's home too.</summary>
    public bool IsRelative => RequestedPath.Length > 0 && RequestedPath[0] != '/' && RequestedPath[0] != '@';
}

/// <summary>
/// Watches indexed by the exact path they were set on, so a change to P is matched by looking up P and each
/// of its ancestors (O(depth)) instead of scanning every watch. A removal also reaches watches set below
/// the removed node, which get an event naming their own path (xenstore.txt).
/// </summary>
internal sealed class WatchRegistry
{
    private readonly Dictionary<string, List<Watch>> _byPath = new(StringComparer.Ordinal);
    private readonly byte[] _scratch = new byte[2 * XsLimits.FrameMax];

    public int Count { get; private set; }

    /// <summary>Sessions given events since the engine last took this list; it sends to them after its lock.</summary>
    public List<ClientSession> AwaitingSend { get; } = [];

    public bool Contains(ClientSession session, string absolutePath, string token) =>
        _byPath.TryGetValue(absolutePath, out var list) && list.Exists(w => w.Session == session && w.Token == token);

    public void Add(Watch watch)
    {
        if (!_byPath.TryGetValue(watch.AbsolutePath, out var list))
            _byPath[watch.AbsolutePath] = list = [];
        list.Add(watch);
        watch.Session.WatchCount++;
        Count++;
    }

    public bool Remove(ClientSession session, string absolutePath, string token)
    {
        if (!_byPath.TryGetValue(absolutePath, out var list)) return false;
        int i = list.FindIndex(w => w.Session == session && w.Token == token);
        if (i < 0) return false;
        list.RemoveAt(i);
        if (list.Count == 0) _byPath.Remove(absolutePath);
        session.WatchCount--;
        Count--;
        return true;
    }

    public void RemoveAll(ClientSession session)
    {
        foreach (var (path, list) in _byPath.ToArray())
        {
            Count -= list.RemoveAll(w => w.Session == session);
            if (list.Count == 0) _byPath.Remove(path);
        }
        session.WatchCount = 0;
    }

    /// <summary>Queues the events for a change of <paramref name="path"/> (or a special event name).</summary>
    public void Fire(string path, bool removal)
    {
        if (XsPath.IsSpecial(path))
        {
            if (_byPath.TryGetValue(path, out var specials))
                foreach (var w in specials) Send(w, path);
            return;
        }
        for (string p = path; ; p = XsPath.Parent(p))
        {
            if (_byPath.TryGetValue(p, out var list))
                foreach (var w in list.ToArray()) Send(w, path);
            if (p == "/") break;
        }
        if (!removal) return;
        foreach (var (watched, list) in _byPath.ToArray())
        {
            if (watched.Length > path.Length && XsPath.IsAtOrBelow(watched, path))
                foreach (var w in list.ToArray()) Send(w, watched);
        }
    }

    /// <summary>The event every new watch gets at once, naming the path as the client gave it.</summary>
    public void FireInitial(Watch watch) => Send(watch, watch.AbsolutePath);

    private void Send(Watch w, string absolutePath)
    {
        var session = w.Session;
        if (session.DisconnectReason != null) return;
        var reported = absolutePath;
        if (w.IsRelative && absolutePath.Length > session.Home.Length + 1 && absolutePath.StartsWith(session.Home, StringComparison.Ordinal))
            reported = absolutePath[(session.Home.Length + 1)..];
        int n = Encoding.UTF8.GetBytes(reported, _scratch);
        _scratch[n++] = 0;
        n += Encoding.UTF8.GetBytes(w.Token, _scratch.AsSpan(n));
        _scratch[n++] = 0;
        if (n > XsLimits.PayloadMax) return; // a deep path with a huge token cannot be framed; never exceed the limit
        if (!session.Send(new XsHeader(XsMessageType.WatchEvent, 0, 0, (uint)n), _scratch.AsSpan(0, n)))
            session.RequestDisconnect("its watch events are not being read (output queue full)");
        else if (!session.AwaitingSend)
        {
            session.AwaitingSend = true;
            AwaitingSend.Add(session);
        }
    }
}
