using BlkTapCtrl.Protocol.XenStore;

namespace BlkTapCtrl.XenStore.Server;

/// <summary>A request the store refuses; becomes an ERROR reply naming <see cref="Error"/>.</summary>
internal sealed class StoreError(XsError error, string detail) : Exception(detail)
{
    public XsError Error { get; } = error;
}
