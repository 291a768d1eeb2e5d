using BlkTapCtrl.Vhd.Image;
using BlkTapCtrl.Worker.IO;
using BlkTapCtrl.Worker.Vbd;

namespace BlkTapCtrl.Worker.Drivers;

/// <summary>
/// Reads (reference §4.1 "read runs"): the request is walked with <see cref="VhdImage.MapRun"/>, which
/// returns maximal runs — present runs end at a block or bitmap-run boundary, unwritten runs continue
/// across blocks — so a request is split no more than the image forces. Present runs are read from this
/// file; unwritten runs go to the parent with <see cref="Images.Image.Forward"/> (which zero-fills
/// beyond the parent and past the last image); on a dynamic disk with no parent they read as zeros.
/// A block whose bitmap is not cached parks the rest of the request on the bitmap read.
/// </summary>
public sealed partial class VhdImageDriver
{
    private void QueueRead(in TapRequest t)
    {
        long sector = (long)t.Sector;
        int left = t.Sectors;
        int done = 0;
        while (left > 0)
        {
            var run = _vhd.MapRun(sector, left);
            if (run.Kind == RunKind.BitmapNeeded)
            {
                // Park everything from here: the runs after this block are mapped once it is known.
                ParkOnBitmap(run.Block, t.Slice(done, left));
                return;
            }
            var part = t.Slice(done, run.Count);
            switch (run.Kind)
            {
                case RunKind.Present:
                    int fd = DataFd(part.Buffer, part.ByteLength, run.FileOffset);
                    if (fd < 0)
                    {
                        part.Complete(fd);
                        break;
                    }
                    var io = RentIo(VhdIoKind.DataRead);
                    io.Tap = part;
                    io.Set(fd, IoOperation.Read, part.Buffer, part.ByteLength, run.FileOffset, this);
                    Submit(io);
                    break;
                default:
                    // Unwritten here. MapRun reports Zero for every unwritten run (the driver does not
                    // know its parent's size); the parent, if any, decides, and Forward zero-fills
                    // whatever lies beyond it.
                    if (_vhd.IsDifferencing)
                    {
                        part.Image.Forward(part);
                    }
                    else
                    {
                        part.ZeroFill();
                        part.Complete(0);
                    }
                    break;
            }
            done += run.Count;
            sector += run.Count;
            left -= run.Count;
        }
    }
}
