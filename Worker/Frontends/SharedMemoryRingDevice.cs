using System.Net.Sockets;
using BlkTapCtrl.Protocol.Blkif;
using BlkTapCtrl.Protocol.Blkif.SharedMemory;
using BlkTapCtrl.Worker.Interop;
using BlkTapCtrl.Worker.Logging;
using BlkTapCtrl.Worker.Scheduling;

namespace BlkTapCtrl.Worker.Frontends;

/// <summary>
/// A blkif ring without Xen: a file in /dev/shm that both sides map, two eventfds for kicks, and a
/// unix socket on which one frontend at a time connects and receives <see cref="SharedRingHello"/>
/// with the three fds (SCM_RIGHTS). A frontend leaving (socket closed) frees the device for the next.
/// </summary>
public sealed unsafe class SharedMemoryRingDevice : IRingDevice
{
    private static int s_counter;
    private readonly EventLoop _loop;
    private readonly WorkerLog _log;
    private readonly string _socketPath;
    private readonly Socket _listener;
    private readonly int _listenEvent;
    private readonly int _fileFd, _kickIn, _kickOut;
    private Socket? _client;
    private int _clientEvent;
    private bool _disposed;

    public SharedMemoryRingDevice(EventLoop loop, string socketPath, SharedRingHello hello, WorkerLog log, string? shmPath = null)
    {
        _loop = loop;
        _log = log;
        _socketPath = socketPath;
        Hello = hello;
        ShmPath = shmPath ?? $"/dev/shm/blktapctrl-ring-{Environment.ProcessId}-{Interlocked.Increment(ref s_counter)}";
        _fileFd = LibC.open(ShmPath, LibC.O_RDWR | LibC.O_CREAT | LibC.O_CLOEXEC | 0x80 /* O_EXCL */, 0x180);
        if (_fileFd < 0)
            throw new IOException($"cannot create the shared ring file {ShmPath}: {Errno.Name(LibC.LastErrno)}");
        if (SharedRingNative.ftruncate(_fileFd, BlkifLayout.MappingSize) < 0)
            throw Fail($"cannot size {ShmPath} to {BlkifLayout.MappingSize} bytes");
        nint map = SharedRingNative.mmap(0, (nuint)BlkifLayout.MappingSize, SharedRingNative.PROT_READ | SharedRingNative.PROT_WRITE,
            SharedRingNative.MAP_SHARED, _fileFd, 0);
        if (map == SharedRingNative.MapFailed)
            throw Fail($"cannot map {ShmPath}");
        Mapping = (byte*)map;
        new BlkifSharedRing(Mapping).Initialize();
        _kickIn = SharedRingNative.eventfd(0, SharedRingNative.EFD_NONBLOCK | SharedRingNative.EFD_CLOEXEC);
        _kickOut = SharedRingNative.eventfd(0, SharedRingNative.EFD_NONBLOCK | SharedRingNative.EFD_CLOEXEC);
        if (_kickIn < 0 || _kickOut < 0)
            throw Fail("cannot create the kick eventfds");
        if (File.Exists(socketPath)) File.Delete(socketPath);
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(socketPath));
        _listener.Listen(4);
        _listener.Blocking = false;
        _listenEvent = loop.Register(EventMode.Read, (int)_listener.Handle, 0, static (_, _, s) => ((SharedMemoryRingDevice)s!).Accept(), this);
    }

    public SharedRingHello Hello { get; }
    public string ShmPath { get; }
    public byte* Mapping { get; }
    public int KickFd => _kickIn;
    public bool HasFrontend => _client != null;

    /// <summary>Asked before a frontend is let in; false turns it away (e.g. the last one's requests still run). Resets the ring when true.</summary>
    public Func<bool>? Attaching { get; set; }

    /// <summary>The frontend closed its socket.</summary>
    public Action? Detached { get; set; }

    private IOException Fail(string what) => new($"{what}: {Errno.Name(LibC.LastErrno)}");

    private void Accept()
    {
        Socket client;
        try { client = _listener.Accept(); }
        catch (SocketException) { return; }
        if (_client != null || Attaching?.Invoke() == false)
        {
            _log.Warn("shm_ring_accept", $"{_socketPath}: a frontend is already attached; connection refused");
            client.Dispose();
            return;
        }
        Span<byte> hello = stackalloc byte[SharedRingHello.Size];
        Hello.WriteTo(hello);
        SharedRingNative.Drain(_kickIn);
        SharedRingNative.Drain(_kickOut);
        int err = SharedRingNative.SendWithFds((int)client.Handle, hello, [_fileFd, _kickIn, _kickOut]);
        if (err != 0)
        {
            _log.Warn("shm_ring_accept", $"{_socketPath}: sending the ring to the frontend failed: {Errno.Name(err)}");
            client.Dispose();
            return;
        }
        client.Blocking = false;
        _client = client;
        _clientEvent = _loop.Register(EventMode.Read, (int)client.Handle, 0, static (_, _, s) => ((SharedMemoryRingDevice)s!).OnClientReadable(), this);
    }

    private void OnClientReadable()
    {
        Span<byte> scratch = stackalloc byte[64];
        int n;
        try { n = _client!.Receive(scratch, SocketFlags.None, out var error); if (error == SocketError.WouldBlock) return; }
        catch (ObjectDisposedException) { n = 0; }
        if (n > 0) return; // the frontend has nothing to say on the socket; ignore chatter
        _loop.Unregister(_clientEvent);
        _client?.Dispose();
        _client = null;
        Detached?.Invoke();
    }

    public void AcknowledgeKick() => SharedRingNative.Drain(_kickIn);

    public void NotifyFrontend() => SharedRingNative.Kick(_kickOut);

    public string Describe() => $"shared-memory ring {ShmPath} on {_socketPath}{(HasFrontend ? " (frontend attached)" : "")}";

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _loop.Unregister(_listenEvent);
        if (_client != null) { _loop.Unregister(_clientEvent); _client.Dispose(); }
        _listener.Dispose();
        try { File.Delete(_socketPath); } catch (IOException) { }
        SharedRingNative.munmap((nint)Mapping, (nuint)BlkifLayout.MappingSize);
        SharedRingNative.close(_kickIn);
        SharedRingNative.close(_kickOut);
        LibC.close(_fileFd);
        SharedRingNative.unlink(ShmPath);
    }
}
