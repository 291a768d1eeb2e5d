using System.Text;
using BlkTapCtrl.Protocol.ControlSocket;

namespace BlkTapCtrl.Protocol.Tests.ControlSocket;

public sealed class ControlSocketJsonTests
{
    private static readonly ChannelInfo Sample = new()
    {
        DomId = 7, DevId = 51712, Backend = "/local/domain/0/backend/tap/7/51712", Cookie = 3, Minor = 1,
        ChannelState = "Running", VbdState = "Unpaused", ShutdownState = "Up", ShutdownForce = true, Pid = 42,
        Params = "vhd:/a b\n.vhd", Images = ["vhd:/a b\n.vhd", "vhd:/base.vhd"], ReadOnly = true, NbdSocket = "/run/nbd1.sock", Ring = "/run/ring1",
    };

    [Test]
    public void Every_message_is_one_line_and_round_trips()
    {
        var request = ControlSocketJson.EncodeRequest(new ControlRequest("stats", 7, 51712));
        Assert.That(ControlSocketJson.DecodeRequest(request.AsSpan(0, request.Length - 1)), Is.EqualTo(new ControlRequest("stats", 7, 51712)));

        var list = ControlSocketJson.EncodeList([Sample]);
        Assert.That(Encoding.UTF8.GetString(list).IndexOf('\n'), Is.EqualTo(list.Length - 1), "a newline inside a value is escaped");
        using var doc = ControlSocketJson.DecodeResponse(list.AsSpan(0, list.Length - 1));
        var read = ControlSocketJson.ReadList(doc.RootElement).Single();
        Assert.That(read.Images, Is.EqualTo(Sample.Images), "the open chain, leaf first");
        Assert.That(read with { Images = Sample.Images }, Is.EqualTo(Sample)); // records compare lists by reference

        // An indented snapshot is re-written compactly: the answer stays one line.
        var stats = ControlSocketJson.EncodeStats(Sample, "{\n  \"vbds\": [\n  ]\n}"u8.ToArray());
        Assert.That(Encoding.UTF8.GetString(stats).IndexOf('\n'), Is.EqualTo(stats.Length - 1));
    }

    [Test]
    public void Errors_name_the_field_or_carry_the_controllers_text()
    {
        Assert.That(() => ControlSocketJson.DecodeRequest("{\"domid\":1}"u8),
            Throws.TypeOf<ControlSocketProtocolException>().With.Message.Contains("'op'"));
        Assert.That(() => ControlSocketJson.DecodeRequest("{\"op\":\"stats\",\"domid\":\"x\"}"u8),
            Throws.TypeOf<ControlSocketProtocolException>().With.Message.Contains("'domid'"));
        Assert.That(() => ControlSocketJson.DecodeRequest("[1]"u8),
            Throws.TypeOf<ControlSocketProtocolException>().With.Message.Contains("not an object"));
        Assert.That(() => ControlSocketJson.DecodeRequest("{"u8), Throws.TypeOf<ControlSocketProtocolException>());
        var error = ControlSocketJson.EncodeError("stats: no VBD 3/9");
        Assert.That(() => ControlSocketJson.DecodeResponse(error.AsSpan(0, error.Length - 1)),
            Throws.TypeOf<ControlSocketErrorException>().With.Message.EqualTo("stats: no VBD 3/9"));
    }
}
