using System.Buffers.Binary;
using BlkTapCtrl.Protocol.Control;
using BlkTapCtrl.Testing;
using CsCheck;

namespace BlkTapCtrl.Integration.Tests.Worker;

/// <summary>
/// A real tapdisk fed random and mutated control records (reference §2) over its real FIFOs: every
/// record but EXIT gets exactly one reply, in order, carrying the record's cookie — ERROR or the
/// request's own response — the process never dies, and afterwards it still OPENs and CLOSEs a VBD
/// and exits 0 once the last one is closed.
/// </summary>
[TestFixture]
public class TapdiskControlFuzzTests
{
    /// <summary>A VBD the random records never name, so the worker always has one and does not exit early.</summary>
    private const ushort Guard = 1000;

    /// <summary>params.path in the record: payload at 8, path at 14 of it, path_len just before.</summary>
    private const int PathOffset = ControlMessage.HeaderSize + 14;

    /// <summary>Stands for the case's image in a generated path (the image lives in the case's temp dir).</summary>
    private const string ImagePlaceholder = "@disk";

    /// <summary>
    /// Mostly well-formed records of every type for a few cookies (so PIDs, OPENs, PAUSEs and CLOSEs meet),
    /// half of the paths the real image, some bytes poked; some records all random.
    /// </summary>
    private static readonly Gen<byte[]> GenRecord =
        Gen.Frequency(
            (4, Gen.Select(
                    Gen.Frequency((2, Gen.Const((ushort)ControlMessageType.Pid)), (2, Gen.Const((ushort)ControlMessageType.Open)),
                        (2, Gen.Const((ushort)ControlMessageType.Pause)), (2, Gen.Const((ushort)ControlMessageType.Resume)), (6, Gen.UShort[1, 16])),
                    Gen.UShort[1, 4],
                    Gen.Frequency((2, Gen.Const((ushort)DriverType.Aio)), (1, Gen.UShort[0, 10])),
                    Gen.Frequency((1, Gen.Const(ImagePlaceholder)), (1, Gen.String[Gen.Char.AlphaNumeric, 0, 40].Select(p => "/nonexistent/" + p))),
                    Gen.Select(Gen.Int[0, ControlMessage.Size - 1], Gen.Byte).Array[0, 4])
                .Select(t =>
                {
                    var (type, cookie, driver, path, pokes) = t;
                    var record = new byte[ControlMessage.Size];
                    new ControlMessage { Type = (ControlMessageType)type, Cookie = cookie, DriverType = driver, Path = path }
                        .WriteTo(record);
                    foreach (var (at, value) in pokes) record[at] = value;
                    return record;
                })),
            (1, Gen.Byte.Array[ControlMessage.Size]));

    [Test]
    public void Random_records_get_one_reply_each_and_the_worker_still_serves() =>
        GenRecord.Array[20, 60].Sample(records => Exercise(records).GetAwaiter().GetResult(), iter: 10, threads: 1);

    private static async Task Exercise(byte[][] records)
    {
        using var dir = new TempDir("ctlfz");
        string image = dir["disk.img"];
        File.WriteAllBytes(image, new byte[64 * 512]);
        using var tap = await TapdiskControlClient.StartAsync(dir);
        Assert.That((await tap.RequestAsync(ControlMessage.Simple(ControlMessageType.Pid, Guard))).Type, Is.EqualTo(ControlMessageType.PidResponse));

        var live = new HashSet<ushort>();
        var paused = new HashSet<ushort>();
        // Two of the records' cookies start open, so their PAUSEs, RESUMEs and CLOSEs meet a live image.
        for (ushort cookie = 1; cookie <= 2; cookie++)
        {
            Assert.That((await tap.RequestAsync(ControlMessage.Simple(ControlMessageType.Pid, cookie))).Type, Is.EqualTo(ControlMessageType.PidResponse));
            Assert.That((await tap.RequestAsync(ControlMessage.Open(cookie, DriverType.Aio, image, 0, StorageType.Ext, 0, 0))).Type,
                Is.EqualTo(ControlMessageType.OpenResponse), tap.Process.StdErr);
            live.Add(cookie);
        }
        for (int i = 0; i < records.Length; i++)
        {
            var record = (byte[])records[i].Clone(); // the generated case stays as CsCheck made it, for its report
            ushort cookie = BinaryPrimitives.ReadUInt16LittleEndian(record.AsSpan(2));
            if (cookie == Guard) BinaryPrimitives.WriteUInt16LittleEndian(record.AsSpan(2), cookie = Guard + 1);
            var type = (ControlMessageType)BinaryPrimitives.ReadUInt16LittleEndian(record);
            var path = record.AsSpan(PathOffset, ControlMessage.TextCapacity);
            if (path.StartsWith(System.Text.Encoding.ASCII.GetBytes(ImagePlaceholder + "\0")))
            {
                path.Clear();
                int n = System.Text.Encoding.UTF8.GetBytes(image, path);
                BinaryPrimitives.WriteUInt16LittleEndian(record.AsSpan(PathOffset - 2), (ushort)n);
            }
            // A RESUME that cannot reopen retries for 9 s (10 attempts 1 s apart, reference §3.5), longer than
            // this test may take: a paused VBD is only ever resumed with a valid record.
            if (type == ControlMessageType.Resume && paused.Contains(cookie))
                ControlMessage.Resume(cookie, DriverType.Aio, image).WriteTo(record);
            tap.SendRaw(record);
            if (type == ControlMessageType.Exit) continue; // ignored: no reply; the next reply must answer the next record
            var reply = await tap.ReceiveAsync(TimeSpan.FromSeconds(10));
            string what = $"record {i} ({type}, cookie {cookie}): {Convert.ToHexString(record.AsSpan(0, 32))}…";
            Assert.That(reply.Cookie, Is.EqualTo(cookie), what);
            Assert.That(reply.Type, Is.EqualTo(ControlMessageType.Error).Or.EqualTo(ResponseTo(type)), what);
            if (reply.Type == ControlMessageType.PidResponse) live.Add(cookie);
            if (reply.Type == ControlMessageType.CloseResponse) { live.Remove(cookie); paused.Remove(cookie); }
            if (reply.Type == ControlMessageType.PauseResponse) paused.Add(cookie);
            if (reply.Type == ControlMessageType.ResumeResponse) paused.Remove(cookie);
            Assert.That(tap.Process.HasExited, Is.False, $"{what}: the worker died; stderr: {tap.Process.StdErr}");
        }

        var open = await tap.RequestAsync(ControlMessage.Open(Guard, DriverType.Aio, image, 0, StorageType.Ext, 0, 0));
        Assert.That((open.Type, open.Cookie, open.Sectors), Is.EqualTo((ControlMessageType.OpenResponse, Guard, 64UL)), tap.Process.StdErr);
        foreach (var cookie in live.Append(Guard))
            Assert.That(await tap.RequestAsync(ControlMessage.Simple(ControlMessageType.ForceShutdown, cookie)),
                Has.Property(nameof(ControlMessage.Type)).EqualTo(ControlMessageType.CloseResponse), $"closing VBD {cookie}");
        Assert.That(await tap.Process.WaitAsync(TimeSpan.FromSeconds(10)), Is.Zero, tap.Process.StdErr);
    }

    /// <summary>The reply a request earns when it succeeds (anything else may only get ERROR).</summary>
    private static ControlMessageType ResponseTo(ControlMessageType request) => request switch
    {
        ControlMessageType.Pid => ControlMessageType.PidResponse,
        ControlMessageType.Open => ControlMessageType.OpenResponse,
        ControlMessageType.Pause => ControlMessageType.PauseResponse,
        ControlMessageType.Resume => ControlMessageType.ResumeResponse,
        ControlMessageType.Close or ControlMessageType.ForceShutdown => ControlMessageType.CloseResponse,
        _ => ControlMessageType.Error,
    };
}
