using System.IO.Pipes;

namespace BlkTapCtrl.Worker.Tests.Scheduling;

/// <summary>A real pipe whose read end is readable once something was written.</summary>
internal sealed class ReadablePipe : IDisposable
{
    private readonly AnonymousPipeServerStream _writer = new(PipeDirection.Out);
    private readonly AnonymousPipeClientStream _reader;

    public ReadablePipe()
    {
        _reader = new AnonymousPipeClientStream(PipeDirection.In, _writer.ClientSafePipeHandle);
    }

    public int ReadFd => (int)_reader.SafePipeHandle.DangerousGetHandle();
    public void MakeReadable() { _writer.WriteByte(1); _writer.Flush(); }
    public void Drain() => _reader.ReadByte();

    public void Dispose()
    {
        _reader.Dispose();
        _writer.Dispose();
    }
}
