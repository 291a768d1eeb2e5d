using BlkTapCtrl.Worker.IO;

namespace BlkTapCtrl.Worker.Tests.Support;

/// <summary>Records every I/O completion in order, for tests that drive an <see cref="IoQueue"/> directly.</summary>
public sealed class IoResults : IIoCompletion
{
    public readonly List<(IoRequest Request, int Result)> Done = new();
    public void OnIoCompleted(IoRequest request, int result) => Done.Add((request, result));
}
