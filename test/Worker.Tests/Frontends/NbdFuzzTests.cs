using System.Net.Sockets;

namespace BlkTapCtrl.Worker.Tests.Frontends;

/// <summary>
/// Property-based fuzzing of the NBD server (issue 6: a client that breaks the protocol is disconnected,
/// others continue; bad input gets a clear error and loses nothing). The server runs in-process on a real
/// unix socket and image; every read is bounded by a timeout, so a hang fails the case. The expected
/// behaviour comes from a reference framing of the bytes actually sent (what proto.md makes the server
/// see), never from the server's own code.
/// </summary>
public partial class NbdFuzzTests
{
    private const int TimeoutMs = 5000;

    /// <summary>
    /// Found by the handshake fuzz (a hard close after 0-26% of the stream): a client gone before the
    /// server accepted it made the greeting's send fail inside the connection's constructor, whose Close
    /// ran before the server had listed the connection; the server then listed a closed connection for
    /// good, one leaked entry per such client (a port scan, a health check).
    /// </summary>
    [Test]
    public void A_client_that_closes_before_the_greeting_is_not_kept_as_a_connection()
    {
        using var h = new NbdFrontendHarness(imageBytes: HandshakeImageBytes);
        // On the loop thread, so the connect and close both happen before the server accepts.
        h.OnLoop(() =>
        {
            using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            s.Connect(new UnixDomainSocketEndPoint(h.SocketPath));
            return 0;
        });
        AssertServerIdle(h, connections: 0);
        Assert.That(h.OnLoop(() => h.Nbd.Accepted), Is.EqualTo(1));
        using var c = h.Connect();
        Assert.That(c.Read(0, 4096), Is.All.EqualTo(0));
    }

    /// <summary>Waits until the server holds <paramref name="connections"/> connections and no VBD request.</summary>
    private static void AssertServerIdle(NbdFrontendHarness h, int connections)
    {
        var deadline = DateTime.UtcNow.AddMilliseconds(TimeoutMs);
        while (true)
        {
            h.AssertLoopHealthy();
            var (count, idle) = h.OnLoop(() => (h.Nbd.Connections.Count, h.Vbd.FreeRequestSlots == h.Vbd.RequestSlots));
            if (count == connections && idle) return;
            if (DateTime.UtcNow > deadline)
                Assert.Fail($"server still holds {count} connections (expected {connections}), VBD idle: {idle}: a stuck channel");
            Thread.Sleep(2);
        }
    }
}
