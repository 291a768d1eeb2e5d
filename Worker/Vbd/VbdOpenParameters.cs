using BlkTapCtrl.Protocol.Control;
using BlkTapCtrl.Worker.Images;

namespace BlkTapCtrl.Worker.Vbd;

/// <summary>What OPEN (or a standalone <c>tapdisk serve</c>) says about the image to open.</summary>
public sealed record VbdOpenParameters(string Path, DriverType Type, ImageOpenFlags Flags = ImageOpenFlags.None,
    StorageType Storage = StorageType.Unknown);

/// <summary>Receives the replies a VBD sends when a deferred control operation finishes.</summary>
public interface IVbdControlReplies
{
    void PauseCompleted(VirtualBlockDevice vbd);
    void CloseCompleted(VirtualBlockDevice vbd);
}
