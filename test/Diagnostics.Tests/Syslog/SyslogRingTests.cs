using System.Text;
using BlkTapCtrl.Diagnostics.Syslog;

namespace BlkTapCtrl.Diagnostics.Tests.Syslog;

public class SyslogRingTests
{
    [Test]
    public void Packets_come_out_in_order_across_many_wraps_and_a_full_ring_refuses()
    {
        var ring = new SyslogRing(3000);
        var model = new Queue<string>();
        var random = new Random(1234);
        int next = 0, refused = 0;
        for (int step = 0; step < 20000; step++)
        {
            if (random.Next(3) != 0)
            {
                var packet = $"{next}:" + new string('x', random.Next(0, 1000));
                if (ring.TryEnqueue(Encoding.ASCII.GetBytes(packet)))
                {
                    model.Enqueue(packet);
                    next++;
                }
                else
                {
                    refused++;
                    Assert.That(model.Sum(p => p.Length + 2) + packet.Length + 2, Is.GreaterThan(3000 - 1000 - 4),
                        "refused only when the ring is nearly full");
                }
            }
            else if (ring.TryPeek(out var head))
            {
                Assert.That(Encoding.ASCII.GetString(head), Is.EqualTo(model.Dequeue()));
                ring.Dequeue();
            }
            Assert.That(ring.Count, Is.EqualTo(model.Count));
        }
        Assert.That(refused, Is.GreaterThan(0), "the test exercised a full ring");
        Assert.That(next, Is.GreaterThan(1000), "the test exercised many wraps");
    }

    [Test]
    public void Ring_smaller_than_one_packet_is_rejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new SyslogRing(100));
    }
}
