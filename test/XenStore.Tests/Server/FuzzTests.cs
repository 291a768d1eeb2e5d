using System.Net.Sockets;
using System.Text;
using BlkTapCtrl.Protocol.XenStore;

namespace BlkTapCtrl.XenStore.Tests.Server;

/// <summary>
/// Random and mutated frames, each on its own connection to our server: the answer is an XS_ERROR reply or a
/// disconnect of that client only, the server keeps serving everyone else, and a rejected request leaves the
/// tree exactly as it was (same root, same change count).
/// </summary>
public class FuzzTests
{
    private static readonly XsMessageType[] Requests =
    [
        XsMessageType.Read, XsMessageType.Write, XsMessageType.Mkdir, XsMessageType.Rm, XsMessageType.Directory,
        XsMessageType.DirectoryPart, XsMessageType.GetPerms, XsMessageType.SetPerms, XsMessageType.Watch,
        XsMessageType.Unwatch, XsMessageType.TransactionStart, XsMessageType.TransactionEnd, XsMessageType.Introduce,
        XsMessageType.Release, XsMessageType.GetDomainPath, XsMessageType.IsDomainIntroduced, XsMessageType.Control,
        XsMessageType.ResetWatches, XsMessageType.Resume, XsMessageType.SetTarget,
    ];

    [TestCase(20251125)]
    [TestCase(4242)]
    public async Task Random_and_mutated_frames_get_an_error_or_a_disconnect_and_never_change_the_tree(int seed)
    {
        var random = new Random(seed);
        await using var server = new RunningServer();
        await using var observer = await server.ConnectAsync();
        await observer.WriteAsync("/fuzz/a/b", "value");
        await observer.WriteAsync("/fuzz/c", "x");
        var engine = server.Server.Engine;
        int rejected = 0, accepted = 0, dropped = 0;

        for (int i = 0; i < 1200; i++)
        {
            var (frame, description) = MakeFrame(random);
            var rootBefore = engine.Root;
            long changesBefore = engine.ChangeCount;
            var replies = Exchange(server, frame, $"seed {seed} frame {i}: {description}");
            var answers = replies.Where(r => r.Type != XsMessageType.WatchEvent).ToList();
            bool success = answers.Any(r => r.Type != XsMessageType.Error);
            if (!success)
            {
                if (answers.Count == 0) dropped++; else rejected++;
                Assert.That(engine.ChangeCount, Is.EqualTo(changesBefore), $"seed {seed} frame {i} ({description}) was rejected yet changed the store");
                Assert.That(engine.Root, Is.SameAs(rootBefore), $"seed {seed} frame {i} ({description}) was rejected yet changed the tree");
            }
            else accepted++;
            if (i % 100 == 0)
                Assert.That(await observer.ReadAsync("/local/domain/0/name"), Is.EqualTo("Domain-0"), "others are still served");
        }
        TestContext.Out.WriteLine($"seed {seed}: {rejected} error replies, {dropped} disconnects/no reply, {accepted} accepted");
        Assert.That(rejected, Is.GreaterThan(100));
        Assert.That(dropped, Is.GreaterThan(20));
        Assert.That(await observer.ReadAsync("/local/domain/0/domid"), Is.EqualTo("0"));
    }

    /// <summary>Sends one frame, closes our side, and collects every frame the server sends until it closes.</summary>
    private static List<(XsMessageType Type, byte[] Payload)> Exchange(RunningServer server, byte[] frame, string what)
    {
        using var s = server.RawConnect();
        s.ReceiveTimeout = 10_000;
        s.Send(frame);
        s.Shutdown(SocketShutdown.Send);
        using var reader = new XsFrameReader();
        var frames = new List<(XsMessageType, byte[])>();
        try
        {
            while (true)
            {
                var fill = reader.GetFillBuffer();
                int n = s.Receive(fill.Span);
                if (n == 0) break;
                reader.Advance(n);
                while (reader.TryRead(out var h, out var p)) frames.Add((h.Type, p.ToArray()));
            }
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.TimedOut)
        {
            Assert.Fail($"{what}: the server neither answered nor closed the connection within 10 s");
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset) { }
        return frames;
    }

    private static (byte[] Frame, string Description) MakeFrame(Random r)
    {
        switch (r.Next(10))
        {
            case 0:
            {
                var junk = new byte[r.Next(1, 120)];
                r.NextBytes(junk);
                return (junk, "random bytes");
            }
            case 1:
            {
                var frame = Template(r, out var name);
                new XsHeader((XsMessageType)r.Next(0, 40), 1, 0, (uint)(frame.Length - 16)).Write(frame);
                return (frame, name + " with a random type");
            }
            case 2:
            {
                var frame = Template(r, out var name);
                uint len = (uint)r.Next(XsLimits.PayloadMax + 1, 1 << 20);
                BitConverter.TryWriteBytes(frame.AsSpan(12), len);
                return (frame, name + $" announcing {len} bytes");
            }
            case 3:
            {
                var frame = Template(r, out var name);
                BitConverter.TryWriteBytes(frame.AsSpan(8), (uint)r.Next(1, int.MaxValue));
                return (frame, name + " in a transaction that does not exist");
            }
            case 4:
            {
                var frame = Template(r, out var name);
                for (int i = 16; i < frame.Length; i++) if (frame[i] == 0) frame[i] = (byte)'x';
                return (frame, name + " without NULs");
            }
            case 5:
            {
                var frame = Template(r, out var name);
                if (frame.Length > 17) frame[16 + r.Next(frame.Length - 16)] = (byte)"/ .*~\u00ff\t"[r.Next(7)];
                return (frame, name + " with a bad character");
            }
            case 6:
            {
                var frame = Template(r, out var name);
                int cut = r.Next(0, frame.Length - 16);
                return (frame[..(16 + cut)], name + $" cut to {cut} payload bytes");
            }
            case 7:
            {
                var frame = Template(r, out var name);
                int flips = r.Next(1, 4);
                for (int i = 0; i < flips; i++) frame[r.Next(frame.Length)] ^= (byte)(1 << r.Next(8));
                return (frame, name + $" with {flips} bit flips");
            }
            case 8:
            {
                var payload = new byte[r.Next(0, XsLimits.PayloadMax + 1)];
                r.NextBytes(payload);
                var frame = new byte[16 + payload.Length];
                new XsHeader(Requests[r.Next(Requests.Length)], 9, 0, (uint)payload.Length).Write(frame);
                payload.CopyTo(frame.AsSpan(16));
                return (frame, "random payload");
            }
            default:
            {
                var path = "/" + string.Join('/', Enumerable.Range(0, r.Next(1, 4)).Select(_ => new string('p', r.Next(0, 3))));
                var frame = Encode(XsMessageType.Write, path + "\0v");
                return (frame, $"write to '{path}'");
            }
        }
    }

    /// <summary>A well-formed request of a random type, to be mutated.</summary>
    private static byte[] Template(Random r, out string name)
    {
        var type = Requests[r.Next(Requests.Length)];
        name = XsMessageTypes.Name(type);
        string payload = type switch
        {
            XsMessageType.Write => "/fuzz/a/b\0new",
            XsMessageType.SetPerms => "/fuzz/c\0b0\0r3\0",
            XsMessageType.Watch or XsMessageType.Unwatch => "/fuzz\0tok\0",
            XsMessageType.TransactionStart => "\0",
            XsMessageType.TransactionEnd => "T\0",
            XsMessageType.Introduce => "5\0" + "1234\0" + "7\0",
            XsMessageType.Release or XsMessageType.Resume or XsMessageType.GetDomainPath or XsMessageType.IsDomainIntroduced => "5\0",
            XsMessageType.SetTarget => "5\0" + "6\0",
            XsMessageType.DirectoryPart => "/fuzz\0" + "0\0",
            XsMessageType.Control => "print\0hello\0",
            XsMessageType.ResetWatches => "\0",
            _ => "/fuzz/a\0",
        };
        return Encode(type, payload);
    }

    private static byte[] Encode(XsMessageType type, string payload)
    {
        var bytes = Encoding.UTF8.GetBytes(payload);
        var frame = new byte[16 + bytes.Length];
        new XsHeader(type, 7, 0, (uint)bytes.Length).Write(frame);
        bytes.CopyTo(frame.AsSpan(16));
        return frame;
    }
}
