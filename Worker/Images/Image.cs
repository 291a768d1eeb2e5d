using BlkTapCtrl.Protocol.Control;
using BlkTapCtrl.Worker.Interop;
using BlkTapCtrl.Worker.Vbd;

namespace BlkTapCtrl.Worker.Images;

/// <summary>One level of a VBD's image chain: a driver plus its place (leaf first, parents after).</summary>
public sealed class Image(string name, DriverType type, ImageOpenFlags flags, IImageDriver driver)
{
    public string Name { get; } = name;
    public DriverType Type { get; } = type;
    public ImageOpenFlags Flags { get; } = flags;
    public IImageDriver Driver { get; } = driver;
    public Image? Parent { get; internal set; }
    public bool IsOpen { get; private set; } = true;
    public bool ReadOnly => (Flags & ImageOpenFlags.ReadOnly) != 0;
    public ulong Sectors => Driver.Sectors;

    /// <summary>
    /// Treq validation before any driver (reference §3.4): driver open (−EBADF), read/write/flush,
    /// no write to a read-only image, 0 &lt; sectors, inside the image (−EINVAL).
    /// </summary>
    public void Queue(in TapRequest request)
    {
        var t = request.Image == this ? request : request.WithImage(this);
        int err = Validate(t);
        if (err != 0)
        {
            t.Complete(err);
            return;
        }
        Driver.Queue(t);
    }

    private int Validate(in TapRequest t)
    {
        if (!IsOpen) return -Errno.EBADF;
        switch (t.Operation)
        {
            case VbdOperation.Read:
                break;
            case VbdOperation.Write:
                if (ReadOnly) return -Errno.EINVAL;
                break;
            case VbdOperation.Flush:
                return 0;
            default:
                return -Errno.EINVAL;
        }
        if (t.Sectors <= 0 || t.Sector + (ulong)t.Sectors > Sectors || t.Sector + (ulong)t.Sectors < t.Sector)
            return -Errno.EINVAL;
        return 0;
    }

    /// <summary>
    /// Read fall-through: sends the request to the parent. The last image zero-fills; the part beyond
    /// the parent's size is zero-filled and completed; a VBD that stopped accepting I/O gets −EBUSY.
    /// </summary>
    public void Forward(in TapRequest request)
    {
        if (!request.Owner.Vbd.IsReady)
        {
            request.Complete(-Errno.EBUSY);
            return;
        }
        var parent = Parent;
        if (parent == null)
        {
            request.ZeroFill();
            request.Complete(0);
            return;
        }
        ulong end = request.Sector + (ulong)request.Sectors;
        if (request.Sector >= parent.Sectors)
        {
            request.ZeroFill();
            request.Complete(0);
            return;
        }
        if (end > parent.Sectors)
        {
            int inside = (int)(parent.Sectors - request.Sector);
            var beyond = request.Slice(inside, request.Sectors - inside);
            beyond.ZeroFill();
            beyond.Complete(0);
            parent.Queue(request.Slice(0, inside).WithImage(parent));
            return;
        }
        parent.Queue(request.WithImage(parent));
    }

    internal void Close()
    {
        if (!IsOpen) return;
        IsOpen = false;
        Driver.Dispose();
    }

    public override string ToString() => $"{Type.ToString().ToLowerInvariant()}:{Name}";
}
