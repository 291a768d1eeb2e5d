using System.Runtime.InteropServices;

namespace BlkTapCtrl.Worker.IO;

/// <summary>
/// Native memory aligned for O_DIRECT (4096 bytes), never moved by the GC. Frontends keep their
/// request data here so segments can be handed to the kernel as they are.
/// </summary>
public sealed unsafe class AlignedBuffer : IDisposable
{
    public const int Alignment = 4096;

    public AlignedBuffer(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        Length = length;
        Pointer = (nint)NativeMemory.AlignedAlloc((nuint)length, Alignment);
        new Span<byte>((void*)Pointer, length).Clear();
    }

    public nint Pointer { get; private set; }
    public int Length { get; }
    public Span<byte> Span => new((void*)Pointer, Length);

    public void Dispose()
    {
        if (Pointer == 0) return;
        NativeMemory.AlignedFree((void*)Pointer);
        Pointer = 0;
    }
}
