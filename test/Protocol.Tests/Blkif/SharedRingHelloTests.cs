using BlkTapCtrl.Protocol.Blkif;
using BlkTapCtrl.Protocol.Blkif.SharedMemory;

namespace BlkTapCtrl.Protocol.Tests.Blkif;

public class SharedRingHelloTests
{
    [Test]
    public void Hello_round_trips_and_names_a_bad_field()
    {
        var buf = new byte[SharedRingHello.Size];
        new SharedRingHello(SharedRingHello.ReadOnlyFlag, 2048, 512, BlkifLayout.MappingPages).WriteTo(buf);
        Assert.That(System.Text.Encoding.ASCII.GetString(buf, 0, 8), Is.EqualTo("BTSHRING"));
        var back = SharedRingHello.Read(buf);
        Assert.That((back.ReadOnly, back.Sectors, back.SectorSize), Is.EqualTo((true, 2048UL, 512u)));
        buf[8] = 2;
        Assert.That(Assert.Throws<BlkifFormatException>(() => SharedRingHello.Read(buf))!.Message, Does.Contain("version 2"));
        new SharedRingHello(0, 1, 512, 10).WriteTo(buf);
        Assert.That(Assert.Throws<BlkifFormatException>(() => SharedRingHello.Read(buf))!.Message, Does.Contain("maps 10 pages"));
    }

    [Test]
    public void Requests_for_a_slot_cover_whole_pages_from_its_first_data_page()
    {
        var r = SharedMemoryRingClient.MakeRequest(BlkifOperation.Write, 5, 100, 20);
        Assert.That((r.SegmentCount, r.TotalSectors, r.Id), Is.EqualTo(((byte)3, 20, 5UL)));
        Assert.That(r.Segments[2], Is.EqualTo(new BlkifSegment(2, 0, 3)));
        Assert.That(r.Validate(200), Is.Null);
        Assert.Throws<ArgumentOutOfRangeException>(() => SharedMemoryRingClient.MakeRequest(BlkifOperation.Read, 0, 0, 89));
    }
}
