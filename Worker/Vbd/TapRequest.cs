using BlkTapCtrl.Worker.Images;

namespace BlkTapCtrl.Worker.Vbd;

/// <summary>
/// A piece of a <see cref="VbdRequest"/> on its way down the image chain (blktap's treq): one
/// memory-contiguous run of sectors aimed at one <see cref="Images.Image"/>. A value type so splitting
/// and forwarding allocate nothing. Every sector of it must be completed exactly once, either with
/// <see cref="Complete"/> or by forwarding it (<see cref="Image.Forward"/>).
/// </summary>
public readonly struct TapRequest(VbdRequest owner, VbdOperation operation, ulong sector, int sectors, nint buffer, Image image)
{
    public const int SectorSize = 512;

    public VbdRequest Owner { get; } = owner;
    public VbdOperation Operation { get; } = operation;
    public ulong Sector { get; } = sector;
    public int Sectors { get; } = sectors;
    public nint Buffer { get; } = buffer;
    public Image Image { get; } = image;

    public long ByteOffset => (long)Sector * SectorSize;
    public int ByteLength => Sectors * SectorSize;

    /// <summary>The sub-request <paramref name="skip"/> sectors in, <paramref name="count"/> sectors long.</summary>
    public TapRequest Slice(int skip, int count)
    {
        if (skip < 0 || count < 0 || skip + count > Sectors)
            throw new ArgumentOutOfRangeException(nameof(count), $"slice {skip}+{count} of a {Sectors}-sector request");
        return new TapRequest(Owner, Operation, Sector + (ulong)skip, count, Buffer + skip * SectorSize, Image);
    }

    public TapRequest WithImage(Image image) => new(Owner, Operation, Sector, Sectors, Buffer, image);

    /// <summary>Completes these sectors: 0, or an error (−errno; a positive value is negated).</summary>
    public void Complete(int error) => Owner.Vbd.CompleteTap(this, error);

    /// <summary>Fills the buffer with zeros (reads of unallocated space).</summary>
    public unsafe void ZeroFill() => new Span<byte>((void*)Buffer, ByteLength).Clear();

    public unsafe Span<byte> Data => new((void*)Buffer, ByteLength);
}
