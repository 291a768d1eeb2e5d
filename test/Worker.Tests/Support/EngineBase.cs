using BlkTapCtrl.Worker.IO;
using BlkTapCtrl.Worker.Logging;
using BlkTapCtrl.Worker.Server;
using BlkTapCtrl.Worker.Vbd;

namespace BlkTapCtrl.Worker.Tests.Support;

/// <summary>
/// What every in-process engine harness has: a real server whose log lines are kept, one VBD answering its
/// control replies here, request memory, a recording frontend, and the request rental that puts one segment
/// of that memory on a request. The test thread is the loop thread.
/// </summary>
public abstract class EngineBase : IDisposable, IVbdControlReplies
{
    public readonly List<string> LogLines = new();
    public readonly RecordingFrontend Frontend = new();
    public readonly AlignedBuffer Memory;
    public readonly TapdiskServer Server;
    public readonly VirtualBlockDevice Vbd;
    public int PauseReplies, CloseReplies;
    private ulong _nextTag = 1;

    /// <param name="options">Server options; the harness supplies the log that fills <see cref="LogLines"/>.</param>
    protected EngineBase(Func<WorkerLog, TapdiskServerOptions> options, int memoryBytes)
    {
        Server = new TapdiskServer(options(new WorkerLog { Sink = (_, line) => LogLines.Add(line.ToString()) }));
        Memory = new AlignedBuffer(memoryBytes);
        Vbd = Server.CreateVbd(1);
        Vbd.ControlReplies = this;
        Frontend.IterationSource = () => Server.Iterations;
    }

    public string Log => string.Join("\n", LogLines);

    /// <summary>Rents a slot and submits one request on <paramref name="sectors"/> sectors at <paramref name="memoryOffset"/> (not yet issued).</summary>
    protected ulong SubmitOne(VbdOperation op, ulong sector, int sectors, int memoryOffset)
    {
        var r = Vbd.TryRentRequest(Frontend) ?? throw new AssertionException("no free request slot");
        ulong tag = _nextTag++;
        r.Tag = tag;
        r.Operation = op;
        r.Sector = sector;
        if (op != VbdOperation.Flush) r.AddSegment(Memory.Pointer + memoryOffset, sectors);
        Vbd.Submit(r);
        return tag;
    }

    public virtual void PauseCompleted(VirtualBlockDevice vbd) => PauseReplies++;
    public virtual void CloseCompleted(VirtualBlockDevice vbd) => CloseReplies++;

    public virtual void Dispose()
    {
        Server.Dispose();
        Memory.Dispose();
    }
}
