using BlkTapCtrl.Protocol.Control;
using BlkTapCtrl.Worker.Interop;
using BlkTapCtrl.Worker.Scheduling;

namespace BlkTapCtrl.Worker.Images;

/// <summary>
/// A VBD's images, leaf first (reference §3.4). Opening walks parents (opened read-only and
/// shareable); an open failing with EIO is retried up to 10 times, 1 s apart.
/// </summary>
public sealed class ImageChain
{
    public const int OpenAttempts = 10;
    public const long RetryIntervalMicroseconds = 1_000_000;
    /// <summary>A longer chain is taken for a parent loop.</summary>
    public const int MaxDepth = 64;

    private readonly List<Image> _images;

    private ImageChain(List<Image> images) => _images = images;

    public Image Leaf => _images[0];
    public IReadOnlyList<Image> Images => _images;

    /// <summary>Opens the chain. Returns 0 or a negative errno, with a log line saying what failed.</summary>
    public static int Open(string path, DriverType type, ImageOpenFlags flags, IImageDriverFactory factory,
        DriverContext context, IClock clock, out ImageChain? chain)
    {
        chain = null;
        var unsupported = flags & (ImageOpenFlags.AddCache | ImageOpenFlags.LogDirty | ImageOpenFlags.VhdIndex);
        if (unsupported != 0)
        {
            context.Log.Error(Errno.EOPNOTSUPP, "tapdisk_image_open_chain", $"{path}: open flags {unsupported} are not supported");
            return -Errno.EOPNOTSUPP;
        }
        int err = 0;
        for (int attempt = 1; attempt <= OpenAttempts; attempt++)
        {
            err = TryOpen(path, type, flags, factory, context, out chain);
            if (err != -Errno.EIO) break;
            if (attempt < OpenAttempts) clock.Sleep(RetryIntervalMicroseconds);
        }
        return err;
    }

    private static int TryOpen(string path, DriverType type, ImageOpenFlags flags, IImageDriverFactory factory,
        DriverContext context, out ImageChain? chain)
    {
        chain = null;
        var images = new List<Image>();
        string name = path;
        var flagsForThis = flags & ~ImageOpenFlags.Shareable;
        while (true)
        {
            if (images.Count == MaxDepth)
            {
                CloseAll(images);
                context.Log.Error(Errno.EINVAL, "tapdisk_image_open_chain", $"{path}: chain deeper than {MaxDepth} (parent loop?)");
                return -Errno.EINVAL;
            }
            int err = factory.Open(type, name, flagsForThis, context, out var driver);
            if (err != 0 || driver == null)
            {
                CloseAll(images);
                err = err == 0 ? -Errno.EINVAL : err;
                context.Log.Error(err, "tapdisk_image_open_chain", $"failed to open {type.ToString().ToLowerInvariant()}:{name}");
                return err;
            }
            if (images.Count > 0 && images[^1].Driver.Parent?.ExpectedUuid is { } expected
                && driver is IImageIdentity identity && identity.Uuid != expected)
            {
                driver.Dispose();
                CloseAll(images);
                context.Log.Error(Errno.EINVAL, "tapdisk_image_open_chain",
                    $"{images[^1].Name} records parent {expected} but {name} is {identity.Uuid}");
                return -Errno.EINVAL;
            }
            var image = new Image(name, type, flagsForThis, driver);
            if (images.Count > 0) images[^1].Parent = image;
            images.Add(image);
            var parent = driver.Parent;
            if (parent == null) break;
            name = parent.Name;
            type = parent.Type;
            flagsForThis |= ImageOpenFlags.ReadOnly | ImageOpenFlags.Shareable;
        }
        chain = new ImageChain(images);
        return 0;
    }

    private static void CloseAll(List<Image> images)
    {
        foreach (var image in images) image.Close();
    }

    public void Close() => CloseAll(_images);
}
