using System.Numerics;
using BlkTapCtrl.Worker.IO;

namespace BlkTapCtrl.Worker.Frontends;

/// <summary>
/// Request data buffers for the NBD frontend: 4096-aligned native memory (straight to O_DIRECT) in
/// power-of-two size classes from 4 KiB to <see cref="MaxBufferSize"/>. Buffers are kept when returned,
/// so in steady state a connection's requests allocate nothing. Shared by all connections of a server
/// (loop thread only).
/// </summary>
public sealed class NbdBufferPool : IDisposable
{
    public const int MinBufferSize = 4096;
    public const int MaxBufferSize = 32 << 20;
    private const int MinShift = 12;
    private const int Classes = 26 - MinShift;

    private readonly Stack<AlignedBuffer>[] _free = new Stack<AlignedBuffer>[Classes];
    private long _allocatedBytes;

    public NbdBufferPool()
    {
        for (int i = 0; i < Classes; i++) _free[i] = new Stack<AlignedBuffer>();
    }

    /// <summary>Bytes of native memory held (rented and free), for the debug dump.</summary>
    public long AllocatedBytes => _allocatedBytes;

    public AlignedBuffer Rent(int minimumLength)
    {
        if (minimumLength is < 0 or > MaxBufferSize)
            throw new ArgumentOutOfRangeException(nameof(minimumLength), minimumLength, $"buffers hold 0..{MaxBufferSize} bytes");
        int cls = ClassOf(minimumLength);
        if (_free[cls].TryPop(out var buffer))
            return buffer;
        _allocatedBytes += MinBufferSize << cls;
        return new AlignedBuffer(MinBufferSize << cls);
    }

    public void Return(AlignedBuffer buffer)
    {
        int cls = ClassOf(buffer.Length);
        if ((MinBufferSize << cls) != buffer.Length)
            throw new ArgumentException($"buffer of {buffer.Length} bytes does not come from this pool", nameof(buffer));
        _free[cls].Push(buffer);
    }

    private static int ClassOf(int length) =>
        length <= MinBufferSize ? 0 : BitOperations.Log2(BitOperations.RoundUpToPowerOf2((uint)length)) - MinShift;

    public void Dispose()
    {
        foreach (var stack in _free)
            while (stack.TryPop(out var b)) b.Dispose();
    }
}
