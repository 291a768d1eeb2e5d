using System.Buffers.Binary;
using BlkTapCtrl.Protocol.Control;

namespace BlkTapCtrl.Protocol.Tests.Control;

public class ControlMessageTests
{
    [Test]
    public void Open_is_laid_out_as_the_reference_params_payload()
    {
        var msg = ControlMessage.Open(cookie: 7, DriverType.Vhd, "/srv/disk.vhd",
            ControlOpenFlags.ReadOnly | ControlOpenFlags.Shared, StorageType.Lvm, devNum: 3, domId: 12);
        var buf = new byte[ControlMessage.Size];
        buf.AsSpan().Fill(0xAA);
        msg.WriteTo(buf);

        Assert.That(BinaryPrimitives.ReadUInt16LittleEndian(buf), Is.EqualTo(5));
        Assert.That(BinaryPrimitives.ReadUInt16LittleEndian(buf.AsSpan(2)), Is.EqualTo(7));
        Assert.That(BinaryPrimitives.ReadUInt16LittleEndian(buf.AsSpan(4)), Is.EqualTo(4));
        Assert.That(buf[6] | buf[7], Is.Zero, "pad");
        Assert.That(buf[8], Is.EqualTo(0x03), "flags");
        Assert.That(buf[9], Is.EqualTo(3), "storage");
        Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(buf.AsSpan(12)), Is.EqualTo(3u), "devnum");
        Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(buf.AsSpan(16)), Is.EqualTo(12u), "domid");
        Assert.That(BinaryPrimitives.ReadUInt16LittleEndian(buf.AsSpan(20)), Is.EqualTo(13), "path_len");
        Assert.That(System.Text.Encoding.ASCII.GetString(buf, 22, 13), Is.EqualTo("/srv/disk.vhd"));
        Assert.That(buf.AsSpan(22 + 13).IndexOfAnyExcept((byte)0), Is.EqualTo(-1), "record zero-filled after the path");

        Assert.That(ControlMessage.Read(buf), Is.EqualTo(msg));
    }

    [Test]
    public void Open_response_and_pid_response_round_trip()
    {
        var buf = new byte[ControlMessage.Size];
        var open = ControlMessage.OpenResponse(9, sectors: 0x1_0000_0001, sectorSize: 512, info: 1);
        open.WriteTo(buf);
        Assert.That(BinaryPrimitives.ReadUInt64LittleEndian(buf.AsSpan(8)), Is.EqualTo(0x1_0000_0001UL));
        Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(buf.AsSpan(16)), Is.EqualTo(512u));
        Assert.That(ControlMessage.Read(buf), Is.EqualTo(open));

        var pid = ControlMessage.PidResponse(9, 4242);
        pid.WriteTo(buf);
        Assert.That(BinaryPrimitives.ReadInt32LittleEndian(buf.AsSpan(8)), Is.EqualTo(4242));
        Assert.That(ControlMessage.Read(buf), Is.EqualTo(pid));
    }

    [Test]
    public void A_path_that_does_not_fit_is_refused_with_the_field_name()
    {
        var msg = ControlMessage.Resume(1, DriverType.Aio, new string('x', 256));
        var ex = Assert.Throws<ControlProtocolException>(() => msg.WriteTo(new byte[ControlMessage.Size]));
        Assert.That(ex!.Message, Does.Contain("params.path"));
        Assert.DoesNotThrow(() => ControlMessage.Resume(1, DriverType.Aio, new string('x', 255)).WriteTo(new byte[ControlMessage.Size]));
    }

    [Test]
    public void A_path_without_NUL_and_a_short_record_are_malformed()
    {
        var buf = new byte[ControlMessage.Size];
        ControlMessage.Open(1, DriverType.Aio, "a", 0, StorageType.Ext, 1, 0).WriteTo(buf);
        buf.AsSpan(22, 256).Fill((byte)'a');
        Assert.Throws<ControlProtocolException>(() => ControlMessage.Read(buf));
        Assert.Throws<ControlProtocolException>(() => ControlMessage.Read(buf.AsSpan(0, 279)));
    }

    [Test]
    public void Unknown_types_decode_so_the_receiver_can_answer_error()
    {
        var buf = new byte[ControlMessage.Size];
        BinaryPrimitives.WriteUInt16LittleEndian(buf, 99);
        var msg = ControlMessage.Read(buf);
        Assert.That((ushort)msg.Type, Is.EqualTo(99));
        Assert.That(ControlMessageTypeNames.LogName(msg.Type), Is.EqualTo("unknown"));
    }
}
