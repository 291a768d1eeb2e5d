using BlkTapCtrl.Protocol.Control;
using BlkTapCtrl.Worker.Images;
using BlkTapCtrl.Worker.Interop;

namespace BlkTapCtrl.Worker.Drivers;

/// <summary>The drivers tapdisk serves, by the supervisor's driver type.</summary>
public sealed class DefaultImageDriverFactory : IImageDriverFactory
{
    public static readonly DefaultImageDriverFactory Instance = new();

    public int Open(DriverType type, string name, ImageOpenFlags flags, DriverContext context, out IImageDriver? driver)
    {
        driver = null;
        switch (type)
        {
            case DriverType.Aio:
                return AioImageDriver.Open(name, flags, context, out driver);
            case DriverType.Vhd:
                return VhdImageDriver.Open(name, flags, context, out driver);
            case DriverType.Ram:
                return RamImageDriver.Open(name, flags, context, out driver);
            default:
                context.Log.Error(Errno.EOPNOTSUPP, "tapdisk_image_open", $"{name}: driver type {type} ({(int)type}) is not supported");
                return -Errno.EOPNOTSUPP;
        }
    }
}
