using BlkTapCtrl.Protocol.Blkif;

namespace BlkTapCtrl.Protocol.Tests.Blkif;

public class BlkifLayoutTests
{
    [Test]
    public void Thirty_two_slots_is_the_largest_power_of_two_that_fits_the_page()
    {
        Assert.That(BlkifLayout.EntriesOffset + BlkifLayout.RingSlots * BlkifLayout.EntrySize, Is.LessThanOrEqualTo(BlkifLayout.PageSize));
        Assert.That(BlkifLayout.EntriesOffset + 2 * BlkifLayout.RingSlots * BlkifLayout.EntrySize, Is.GreaterThan(BlkifLayout.PageSize));
        Assert.That(BlkifLayout.MappingPages, Is.EqualTo(1 + 32 * 11));
        Assert.That(BlkifLayout.SlotOffset(33), Is.EqualTo(64 + 112));
        Assert.That(BlkifLayout.SlotOffset(uint.MaxValue), Is.EqualTo(64 + 31 * 112));
    }

    [Test]
    public void Data_page_of_a_segment_follows_the_ring_page_eleven_per_slot()
    {
        Assert.That(BlkifLayout.DataPageOffset(0, 0), Is.EqualTo(4096));
        Assert.That(BlkifLayout.DataPageOffset(2, 3), Is.EqualTo((1 + 2 * 11 + 3) * 4096L));
        Assert.That(BlkifLayout.DataPageOffset(31, 10), Is.EqualTo(BlkifLayout.MappingSize - 4096));
        Assert.Throws<ArgumentOutOfRangeException>(() => BlkifLayout.DataPageOffset(32, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => BlkifLayout.DataPageOffset(0, 11));
    }

    [Test]
    public void Request_fields_sit_at_the_x86_64_offsets()
    {
        var r = new BlkifRequest { Operation = BlkifOperation.Write, SegmentCount = 11, Handle = 0x0A0B, Id = 0x1122334455667788, Sector = 0x99 };
        for (int i = 0; i < 11; i++)
            r.Segments[i] = new BlkifSegment((uint)(0x100 + i), (byte)(i % 8), 7);
        var buf = new byte[BlkifLayout.RequestSize];
        r.WriteTo(buf);
        Assert.That(buf[0], Is.EqualTo(1));
        Assert.That(buf[1], Is.EqualTo(11));
        Assert.That(Convert.ToHexString(buf, 2, 2), Is.EqualTo("0B0A"));
        Assert.That(Convert.ToHexString(buf, 8, 8), Is.EqualTo("8877665544332211"));
        Assert.That(Convert.ToHexString(buf, 16, 8), Is.EqualTo("9900000000000000"));
        Assert.That(Convert.ToHexString(buf, 24, 8), Is.EqualTo("00010000" + "00" + "07" + "0000"));
        Assert.That(Convert.ToHexString(buf, 104, 8), Is.EqualTo("0A010000" + "02" + "07" + "0000"));
        var back = BlkifRequest.Read(buf);
        Assert.That((back.Operation, back.SegmentCount, back.Handle, back.Id, back.Sector),
            Is.EqualTo((BlkifOperation.Write, (byte)11, (ushort)0x0A0B, 0x1122334455667788UL, 0x99UL)));
        Assert.That(back.Segments[10], Is.EqualTo(new BlkifSegment(0x10A, 2, 7)));
        Assert.That(back.TotalSectors, Is.EqualTo(r.TotalSectors));
    }

    [Test]
    public void Response_is_id_op_status_in_16_bytes()
    {
        var buf = new byte[16];
        Array.Fill(buf, (byte)0xCC);
        new BlkifResponse(5, BlkifOperation.Read, BlkifStatus.Error).WriteTo(buf);
        Assert.That(Convert.ToHexString(buf), Is.EqualTo("0500000000000000" + "00" + "00" + "FFFF" + "00000000"));
        Assert.That(BlkifResponse.Read(buf), Is.EqualTo(new BlkifResponse(5, BlkifOperation.Read, BlkifStatus.Error)));
    }

    private static BlkifRequest Valid()
    {
        var r = new BlkifRequest { Operation = BlkifOperation.Read, SegmentCount = 2, Sector = 8 };
        r.Segments[0] = new BlkifSegment(0, 0, 7);
        r.Segments[1] = new BlkifSegment(1, 0, 3);
        return r;
    }

    [Test]
    public void Ring_check_accepts_a_valid_request_and_names_each_bad_field()
    {
        Assert.That(Valid().Validate(20), Is.Null);
        var r = Valid(); r.Operation = BlkifOperation.Discard;
        Assert.That(r.Validate(20), Does.Contain("operation 5"));
        r = Valid(); r.SegmentCount = 0;
        Assert.That(r.Validate(20), Does.Contain("nr_segments 0"));
        r = Valid(); r.SegmentCount = 12;
        Assert.That(r.Validate(20), Does.Contain("nr_segments 12"));
        r = Valid(); r.Segments[1] = new BlkifSegment(1, 0, 8);
        Assert.That(r.Validate(20), Does.Contain("last_sect 8"));
        Assert.That(Valid().Validate(19), Does.Contain("beyond the image's 19 sectors"));
        r = Valid(); r.Sector = ulong.MaxValue;
        Assert.That(r.Validate(20), Does.Contain("beyond"));
    }

    [Test]
    public void Section6_7_every_segment_is_checked_not_only_the_last()
    {
        // The original validated only the last segment's sector count; a bad middle segment slipped through.
        var r = new BlkifRequest { Operation = BlkifOperation.Write, SegmentCount = 3 };
        r.Segments[0] = new BlkifSegment(0, 0, 7);
        r.Segments[1] = new BlkifSegment(1, 6, 2);
        r.Segments[2] = new BlkifSegment(2, 0, 7);
        Assert.That(r.Validate(1000), Does.Contain("segment 1 first_sect 6 is beyond last_sect 2"));
    }
}
