using BlkTapCtrl.Protocol.Control;
using BlkTapCtrl.Protocol.Nbd;
using BlkTapCtrl.Testing;
using BlkTapCtrl.Vhd.Format;
using BlkTapCtrl.Vhd.Operations;
using BlkTapCtrl.Worker.Tests.Support;

namespace BlkTapCtrl.Worker.Tests.Frontends;

/// <summary>
/// Structured READs of ranges no image of the chain holds are answered with one OFFSET_HOLE chunk and no
/// I/O (as qemu-nbd does); everything else is read and sent as data.
/// </summary>
public class NbdHoleReadTests
{
    private const int Mib = 1 << 20;

    private static void MakeDynamic(string path)
    {
        File.Delete(path);
        VhdCreator.Create(path, new VhdCreateOptions { SizeBytes = 8UL << 20, Type = DiskType.Dynamic });
    }

    [Test]
    public void Unwritten_vhd_blocks_read_as_one_hole_chunk_and_written_ranges_as_data()
    {
        using var h = new NbdFrontendHarness(type: DriverType.Vhd, prepareImage: MakeDynamic);
        using var c = h.Connect(structured: true);
        var data = TestBytes.Pattern(64 * 1024, 5);
        Assert.That(c.Write(2 * Mib + 4096, data), Is.EqualTo(NbdError.None));

        c.SendRequest(NbdCommand.Read, 0, Mib);
        var hole = c.ReadReply();
        Assert.That(hole.Chunks, Is.EqualTo(new[] { NbdReplyType.OffsetHole }), "a never-written block");
        Assert.That(hole.Data, Has.Length.EqualTo(Mib).And.All.EqualTo(0));

        c.SendRequest(NbdCommand.Read, 4 * Mib, 4096, NbdCommandFlags.DontFragment);
        Assert.That(c.ReadReply().Chunks, Is.EqualTo(new[] { NbdReplyType.OffsetHole }), "one chunk satisfies DF");

        c.SendRequest(NbdCommand.Read, 2 * Mib + 4096, (uint)data.Length);
        var written = c.ReadReply();
        Assert.That(written.Chunks, Is.EqualTo(new[] { NbdReplyType.OffsetData }));
        Assert.That(written.Data, Is.EqualTo(data));

        // Allocated block, bits clear before the write: the bitmap says zeroes, but the range is mixed, so it is read.
        c.SendRequest(NbdCommand.Read, 2 * Mib, 8192);
        var mixed = c.ReadReply();
        Assert.That(mixed.Chunks, Is.EqualTo(new[] { NbdReplyType.OffsetData }));
        Assert.That(mixed.Data.AsSpan(0, 4096).IndexOfAnyExcept((byte)0), Is.EqualTo(-1));
        Assert.That(mixed.Data.AsSpan(4096).ToArray(), Is.EqualTo(data.AsSpan(0, 4096).ToArray()));
        h.AssertLoopHealthy();
    }

    [Test]
    public void A_differencing_child_reads_its_parents_data_as_data_and_only_chain_wide_holes_as_holes()
    {
        using var dir = new TempDir("nbdhole");
        string parent = VhdFixtures.Dynamic(dir, "parent.vhd", 8);
        var model = new byte[8 * Mib];
        var parentData = TestBytes.Pattern(Mib, 6);
        VhdFixtures.WriteWithLibrary(parent, model, 2 * Mib / 512, parentData);
        using var h = new NbdFrontendHarness(type: DriverType.Vhd, prepareImage: p =>
        {
            File.Delete(p);
            VhdCreator.Create(p, new VhdCreateOptions { Type = DiskType.Differencing, ParentPath = parent });
        });
        using var c = h.Connect(structured: true);

        c.SendRequest(NbdCommand.Read, 2 * Mib, Mib);
        var fromParent = c.ReadReply();
        Assert.That(fromParent.Chunks, Is.EqualTo(new[] { NbdReplyType.OffsetData }));
        Assert.That(fromParent.Data, Is.EqualTo(parentData));

        c.SendRequest(NbdCommand.Read, 6 * Mib, Mib);
        var nowhere = c.ReadReply();
        Assert.That(nowhere.Chunks, Is.EqualTo(new[] { NbdReplyType.OffsetHole }));
        Assert.That(nowhere.Data, Has.Length.EqualTo(Mib).And.All.EqualTo(0));
    }

    [Test]
    public void Simple_replies_and_raw_images_send_the_zeroes_as_data()
    {
        using (var h = new NbdFrontendHarness(type: DriverType.Vhd, prepareImage: MakeDynamic))
        using (var simple = h.Connect(structured: false))
            Assert.That(simple.Read(0, Mib), Has.Length.EqualTo(Mib).And.All.EqualTo(0));

        // A sparse raw file: its holes would need lseek on every read, so it is read as usual.
        using var raw = new NbdFrontendHarness();
        using var c = raw.Connect(structured: true);
        c.SendRequest(NbdCommand.Read, 0, 65536);
        var reply = c.ReadReply();
        Assert.That(reply.Chunks, Is.EqualTo(new[] { NbdReplyType.OffsetData }));
        Assert.That(reply.Data, Is.All.EqualTo(0));
    }
}
