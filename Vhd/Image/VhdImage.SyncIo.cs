using System.Buffers;
using BlkTapCtrl.Vhd.Format;
using BlkTapCtrl.Vhd.Platform;

namespace BlkTapCtrl.Vhd.Image;

public sealed partial class VhdImage
{
    private static readonly byte[] Zeros = new byte[1 << 20];

    /// <summary>
    /// Reads sectors of this image alone: sectors not written here read as zeros (a chain read goes
    /// through <see cref="VhdChain.Read"/>).
    /// </summary>
    public void Read(long sector, Span<byte> destination)
    {
        long count = destination.Length / 512;
        if (destination.Length % 512 != 0)
            throw new VhdFormatException("buffer length", destination.Length, "must be whole sectors");
        if (count == 0) return;
        CheckRange(sector, count);
        int done = 0;
        while (count > 0)
        {
            var run = MapRun(sector, count);
            if (run.Kind == RunKind.BitmapNeeded)
            {
                LoadBitmap(run.Block);
                continue;
            }
            var part = destination.Slice(done, run.Count * 512);
            if (run.Kind == RunKind.Present)
                ReadExactly(Handle, part, run.FileOffset, "data");
            else
                part.Clear();
            done += part.Length;
            sector += run.Count;
            count -= run.Count;
        }
    }

    /// <summary>
    /// libvhd-style synchronous write: new blocks are allocated at the end of the data (blktap's gap
    /// rule, unwritten parts zeroed), the BAT sector and bitmap are written, the batmap bit is set when
    /// a block fills (the batmap written once per call), and the primary footer follows the end of the
    /// data. Crash order as blktap: data and bitmap reach the file before the BAT entry that makes
    /// them visible, and the file never ends without a footer.
    /// </summary>
    public void Write(long sector, ReadOnlySpan<byte> data)
    {
        if (data.Length % 512 != 0)
            throw new VhdFormatException("buffer length", data.Length, "must be whole sectors");
        long count = data.Length / 512;
        if (count == 0) return;
        CheckRange(sector, count);
        if (ReadOnly)
            throw new VhdFormatException("open mode", "read-only", $"cannot write to {Path}", Errnos.EPERM);
        if (!IsDynamic)
        {
            RandomAccess.Write(Handle, data, sector * 512);
            return;
        }
        RequireWritableDynamic();
        long lengthBefore = -1;
        int done = 0;
        while (count > 0)
        {
            var run = ClassifyWrite(sector, count);
            var chunk = data.Slice(done, run.Count * 512);
            switch (run.Kind)
            {
                case WriteKind.Allocate:
                    if (lengthBefore < 0)
                        lengthBefore = IsBlockDevice ? FileLength : RandomAccess.GetLength(Handle);
                    AllocateAndWrite(run.Block, run.FirstInBlock, chunk, lengthBefore);
                    break;
                case WriteKind.BitmapNeeded:
                    LoadBitmap(run.Block);
                    continue;
                case WriteKind.Plain:
                    RandomAccess.Write(Handle, chunk, run.FileOffset);
                    break;
                case WriteKind.BitmapUpdate:
                    WriteWithBitmapUpdate(run, chunk);
                    break;
                default:
                    throw new VhdFormatException("write", run.Kind, "unexpected write classification");
            }
            done += chunk.Length;
            sector += run.Count;
            count -= run.Count;
        }
        if (BatmapDirty)
            WriteBatmap();
        if (lengthBefore >= 0)
            CompleteAppendFooter(lengthBefore);
    }

    /// <summary>
    /// Data into an allocated block whose bitmap lacks some of its sectors: data, then the bitmap
    /// (staged in the shadow, committed once written). A run starting at the block's first sector
    /// sits right after the bitmap, so both go in one gathered write.
    /// </summary>
    private void WriteWithBitmapUpdate(WriteRun run, ReadOnlySpan<byte> chunk)
    {
        var bm = LoadBitmapCached(run.Block);
        bm.BeginUpdate();
        bm.StageSectors(run.FirstInBlock, run.Count);
        try
        {
            if (run.FirstInBlock == 0)
            {
                NativeFile.WriteGather(Handle, bm.Shadow, chunk, BitmapFileOffset(run.Block));
            }
            else
            {
                RandomAccess.Write(Handle, chunk, run.FileOffset);
                RandomAccess.Write(Handle, bm.Shadow, BitmapFileOffset(run.Block));
            }
        }
        catch
        {
            bm.Rollback();
            throw;
        }
        bm.Commit();
        UpdateBatmapBit(run.Block, bm);
    }

    /// <summary>
    /// Allocates a block and writes into it, in blktap's crash-safe order with as few writes as the
    /// layout allows: [gap zeros + bitmap + data] as one gathered write when the data starts the block,
    /// the zeros the file does not already read as zero, the primary footer at the new end of data
    /// (so the file covers the block before the BAT points at it, and a crash before the BAT write
    /// leaves a valid footer and an unreferenced block), then the BAT sector.
    /// </summary>
    /// <param name="lengthBefore">File length at the start of the call: on a regular file, bytes at or
    /// past it read as zeros once the file is extended, so only the part of the new block that overlaps
    /// old content (at most the old footer) is zeroed explicitly; a block device gets every zero written.</param>
    private void AllocateAndWrite(uint block, int firstInBlock, ReadOnlySpan<byte> chunk, long lengthBefore)
    {
        var plan = BeginAllocation(block);
        byte[]? rented = null;
        try
        {
            int sectors = chunk.Length / 512;
            long zeroLimit = IsBlockDevice ? long.MaxValue : lengthBefore;
            int headBytes = (plan.GapSectors + BitmapSectors) * 512;
            Span<byte> head = headBytes <= 8192 ? stackalloc byte[headBytes] : (rented = RentBuffer(headBytes)).AsSpan(0, headBytes);
            head.Clear();
            SectorBitmap.SetRange(head[(plan.GapSectors * 512)..], firstInBlock, sectors);
            if (firstInBlock == 0)
            {
                NativeFile.WriteGather(Handle, head, chunk, plan.ZeroStartSector * 512);
            }
            else
            {
                RandomAccess.Write(Handle, head, plan.ZeroStartSector * 512);
                WriteZerosBelow(plan.DataFileOffset(0), (long)firstInBlock * 512, zeroLimit);
                RandomAccess.Write(Handle, chunk, plan.DataFileOffset(firstInBlock));
            }
            int after = SectorsPerBlock - firstInBlock - sectors;
            WriteZerosBelow(plan.DataFileOffset(firstInBlock + sectors), (long)after * 512, zeroLimit);
            if (!IsBlockDevice)
            {
                // The BAT never points past the end of the file: the footer extends it first.
                Span<byte> footer = stackalloc byte[VhdFooter.Size];
                Footer.WriteTo(footer);
                RandomAccess.Write(Handle, footer, plan.NewNextFreeSector * 512);
            }

            Span<byte> batSector = stackalloc byte[512];
            plan.FillBatSector(batSector);
            RandomAccess.Write(Handle, batSector, plan.BatSectorFileOffset);
            var bm = CommitAllocation(plan);
            bm.SetSectors(firstInBlock, sectors);
            UpdateBatmapBit(block, bm);
        }
        catch
        {
            AbortAllocation(plan);
            throw;
        }
        finally
        {
            if (rented != null)
                ReturnBuffer(rented);
        }
    }

    private void WriteZerosBelow(long offset, long length, long limit)
    {
        if (offset < limit)
            WriteZeros(offset, Math.Min(length, limit - offset));
    }

    /// <summary>Writes <paramref name="length"/> zero bytes at <paramref name="offset"/>.</summary>
    public void WriteZeros(long offset, long length)
    {
        while (length > 0)
        {
            int n = (int)Math.Min(length, Zeros.Length);
            RandomAccess.Write(Handle, Zeros.AsSpan(0, n), offset);
            offset += n;
            length -= n;
        }
    }

    /// <summary>Copies a whole image's written sectors into a buffer-sized loop (helper for tools).</summary>
    internal static byte[] RentBuffer(int bytes) => ArrayPool<byte>.Shared.Rent(bytes);
    internal static void ReturnBuffer(byte[] b) => ArrayPool<byte>.Shared.Return(b);
}
