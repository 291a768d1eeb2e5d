using BlkTapCtrl.Worker.Vbd;

namespace BlkTapCtrl.Worker.Tests.Support;

/// <summary>A frontend that records every answer (tag, error, when) and every kick.</summary>
public sealed class RecordingFrontend : IVbdFrontend
{
    public readonly List<(ulong Tag, int Error, long Iteration)> Answers = new();
    public readonly Dictionary<ulong, int> AnswerCount = new();
    public int Kicks;
    public bool Closed;
    public Func<long> IterationSource = () => 0;
    public Action<VbdRequest>? OnAnswer;

    public void OnRequestCompleted(VbdRequest request)
    {
        Assert.That(Closed, Is.False, "answer after the VBD closed");
        Answers.Add((request.Tag, request.Error, IterationSource()));
        AnswerCount[request.Tag] = AnswerCount.GetValueOrDefault(request.Tag) + 1;
        OnAnswer?.Invoke(request);
    }

    public void OnResponsesReady() => Kicks++;
    public void OnVbdClosed() => Closed = true;

    public int? ErrorOf(ulong tag)
    {
        foreach (var a in Answers) if (a.Tag == tag) return a.Error;
        return null;
    }
}
