using BlkTapCtrl.Worker.Vbd;

namespace BlkTapCtrl.Worker.Tests.Logging;

/// <summary>A frontend that records each answer (tag, error) in order.</summary>
public sealed class CollectingFrontend : IVbdFrontend
{
    public readonly List<(ulong Tag, int Error)> Answers = new();
    public int Kicks;

    public void OnRequestCompleted(VbdRequest request) => Answers.Add((request.Tag, request.Error));
    public void OnResponsesReady() => Kicks++;
    public void OnVbdClosed() { }
}
