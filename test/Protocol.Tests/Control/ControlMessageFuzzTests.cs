using System.Buffers.Binary;
using System.Text;
using BlkTapCtrl.Protocol.Control;
using BlkTapCtrl.Testing;
using CsCheck;

namespace BlkTapCtrl.Protocol.Tests.Control;

/// <summary>
/// Random and mutated 280-byte records (reference §2): each either decodes to a message whose encoding
/// is the record's canonical form — the fields its type's union member uses, unchanged, and zeros
/// everywhere else (pad, unused payload, bytes after a string's NUL, path_len recomputed) — or is
/// refused with <see cref="ControlProtocolException"/>. Never another exception, and never a message
/// that decodes but cannot be sent on.
/// </summary>
public class ControlMessageFuzzTests
{
    private const int Payload = ControlMessage.HeaderSize;

    /// <summary>Well-formed records of every type (and some unknown ones) with 0–8 bytes overwritten.</summary>
    private static readonly Gen<byte[]> GenMutated =
        Gen.Select(Gen.UShort[0, 16], Gen.UShort, Gen.UShort, Gen.Int, Gen.ULong, Gen.String[Gen.Char, 0, 120],
                Gen.Select(Gen.Int[0, ControlMessage.Size - 1], Gen.Byte).Array[0, 8])
            .Select(t =>
            {
                var (type, cookie, driver, number, wide, text, pokes) = t;
                var m = new ControlMessage
                {
                    Type = (ControlMessageType)type, Cookie = cookie, DriverType = driver, Pid = number,
                    Sectors = wide, SectorSize = (uint)number, Info = (uint)(wide >> 32),
                    Flags = (ControlOpenFlags)number, Storage = (StorageType)(number >> 8), DevNum = (uint)wide, DomId = (uint)number,
                    Path = text.Replace('\0', '/'), Text = text.Replace('\0', ' '),
                };
                var record = new byte[ControlMessage.Size];
                try { m.WriteTo(record); }
                catch (ControlProtocolException) { } // a text too long in UTF-8: the record stays as far as it got
                foreach (var (at, value) in pokes) record[at] = value;
                return record;
            });

    private static readonly Gen<byte[]> GenRecord =
        Gen.Frequency((3, GenMutated), (1, Gen.Byte.Array[ControlMessage.Size]), (1, Gen.Byte.Array[0, ControlMessage.Size - 1]));

    [Test]
    public void Records_decode_to_their_canonical_form_or_fail_with_the_protocol_exception() =>
        GenRecord.Sample(record =>
        {
            ControlMessage message;
            try { message = ControlMessage.Read(record); }
            catch (ControlProtocolException) { return; }
            var encoded = new byte[ControlMessage.Size];
            message.WriteTo(encoded);
            AssertBytes.Equal(Canonical(record), encoded, $"re-encoded {message.Type} record");
            Assert.That(ControlMessage.Read(encoded), Is.EqualTo(message), "decoding the re-encoded record");
        }, iter: 20_000);

    /// <summary>The record as the reference lays out the type's payload, everything unused zeroed.</summary>
    private static byte[] Canonical(byte[] record)
    {
        var c = new byte[ControlMessage.Size];
        record.AsSpan(0, 6).CopyTo(c); // type, cookie, drivertype; the pad stays zero
        var type = (ControlMessageType)BinaryPrimitives.ReadUInt16LittleEndian(record);
        var payload = record.AsSpan(Payload);
        var into = c.AsSpan(Payload);
        switch (type)
        {
            case ControlMessageType.PidResponse:
                payload[..4].CopyTo(into);
                break;
            case ControlMessageType.OpenResponse:
                payload[..16].CopyTo(into);
                break;
            case ControlMessageType.Open or ControlMessageType.Resume:
                into[0] = payload[0];
                into[1] = payload[1];
                payload[4..12].CopyTo(into[4..]);
                int len = payload.Slice(14, 256).IndexOf((byte)0);
                BinaryPrimitives.WriteUInt16LittleEndian(into[12..], (ushort)len);
                payload.Slice(14, len).CopyTo(into[14..]);
                break;
            case ControlMessageType.RuntimeError:
                int n = payload[..256].IndexOf((byte)0);
                payload[..n].CopyTo(into);
                break;
        }
        return c;
    }

    [Test]
    public void A_path_that_is_not_UTF8_is_refused_not_rewritten()
    {
        var record = new byte[ControlMessage.Size];
        ControlMessage.Open(1, DriverType.Aio, "/srv/disk.img", 0, StorageType.Unknown, 0, 0).WriteTo(record);
        record[Payload + 14 + 5] = 0xE9; // "/srv/\xe9isk.img": a Latin-1 byte, a valid Linux file name
        var ex = Assert.Throws<ControlProtocolException>(() => ControlMessage.Read(record));
        Assert.That(ex!.Message, Does.Contain("params.path"));
        Assert.That(Encoding.UTF8.GetString(record, Payload + 14, 13), Does.Contain("\uFFFD"),
            "lenient decoding would have named a different file");
    }
}
