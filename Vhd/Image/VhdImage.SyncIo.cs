using System.Buffers;
using BlkTapCtrl.Vhd.Format;

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
    /// a block fills, and the footer is rewritten once per call if the data end moved.
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
        bool grew = false;
        int done = 0;
        while (count > 0)
        {
            var run = ClassifyWrite(sector, count);
            var chunk = data.Slice(done, run.Count * 512);
            switch (run.Kind)
            {
                case WriteKind.Allocate:
                    AllocateAndWrite(run.Block, run.FirstInBlock, chunk);
                    grew = true;
                    break;
                case WriteKind.BitmapNeeded:
                    LoadBitmap(run.Block);
                    continue;
                case WriteKind.Plain:
                    RandomAccess.Write(Handle, chunk, run.FileOffset);
                    break;
                case WriteKind.BitmapUpdate:
                    RandomAccess.Write(Handle, chunk, run.FileOffset);
                    var bm = LoadBitmapCached(run.Block);
                    bm.SetSectors(run.FirstInBlock, run.Count);
                    RandomAccess.Write(Handle, bm.Committed, BitmapFileOffset(run.Block));
                    UpdateBatmapBit(run.Block, bm);
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
        if (grew)
            WriteFooter(includeBackup: false);
    }

    private void AllocateAndWrite(uint block, int firstInBlock, ReadOnlySpan<byte> chunk)
    {
        var plan = BeginAllocation(block);
        try
        {
            int sectors = chunk.Length / 512;
            // On a regular file, bytes at or past the current end read as zeros once the file is
            // extended, so only the part of the new block that overlaps old content (at most the old
            // footer) is zeroed explicitly; a block device gets every zero written.
            long zeroLimit = IsBlockDevice ? long.MaxValue : RandomAccess.GetLength(Handle);
            // Gap and bitmap in one buffer: zeros for the gap, bits for the sectors being written.
            var head = new byte[(plan.GapSectors + BitmapSectors) * 512];
            var bitmap = head.AsSpan(plan.GapSectors * 512, BitmapBytes);
            SectorBitmap.SetRange(bitmap, firstInBlock, sectors);
            RandomAccess.Write(Handle, head, plan.ZeroStartSector * 512);
            WriteZerosBelow(plan.DataFileOffset(0), (long)firstInBlock * 512, zeroLimit);
            RandomAccess.Write(Handle, chunk, plan.DataFileOffset(firstInBlock));
            int after = SectorsPerBlock - firstInBlock - sectors;
            WriteZerosBelow(plan.DataFileOffset(firstInBlock + sectors), (long)after * 512, zeroLimit);
            long blockEnd = plan.NewNextFreeSector * 512;
            if (!IsBlockDevice && RandomAccess.GetLength(Handle) < blockEnd)
                RandomAccess.SetLength(Handle, blockEnd); // the BAT never points past the end of the file

            var batSector = new byte[512];
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
