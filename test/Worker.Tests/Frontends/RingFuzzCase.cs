using System.Buffers.Binary;
using BlkTapCtrl.Protocol.Blkif;
using CsCheck;

namespace BlkTapCtrl.Worker.Tests.Frontends;

/// <summary>
/// What a hostile blkif frontend does to the shared page, as CsCheck generators: batches of valid
/// requests with 0–3 field mutations each (or 112 random bytes), published slots it never filled,
/// producer jumps beyond the ring (or backwards), and random control bytes.
/// </summary>
public static class RingFuzzCase
{
    /// <summary>The disk is small so random and mutated sectors often land near or past its end.</summary>
    public const int DiskSectors = 512;

    public enum Field { Op, SegmentCount, FirstSect, LastSect, NearEnd, NearU64Max, AnySector, AnyId, DuplicateId, Gref, Handle, AnyByte }

    public sealed record Mutation(Field Field, ulong Value, int Segment);

    public sealed record RequestSpec(bool Write, int Id, int SectorSeed, (byte First, byte Last)[] Segments, Mutation[] Mutations, byte[]? Random)
    {
        /// <summary>The 112 bytes the frontend writes into its slot.</summary>
        public byte[] Encode()
        {
            if (Random != null) return (byte[])Random.Clone();
            var r = new BlkifRequest
            {
                Operation = Write ? BlkifOperation.Write : BlkifOperation.Read,
                SegmentCount = (byte)Segments.Length,
                Id = (ulong)Id,
            };
            int total = 0;
            for (int i = 0; i < Segments.Length; i++)
            {
                r.Segments[i] = new BlkifSegment((uint)i, Segments[i].First, Segments[i].Last);
                total += Segments[i].Last - Segments[i].First + 1;
            }
            r.Sector = (ulong)(SectorSeed % (DiskSectors - total + 1));
            var b = new byte[BlkifLayout.RequestSize];
            r.WriteTo(b);
            foreach (var m in Mutations) Apply(b, m);
            return b;
        }

        private void Apply(byte[] b, Mutation m)
        {
            int seg = BlkifLayout.SegmentsOffset + m.Segment * BlkifLayout.SegmentSize;
            switch (m.Field)
            {
                case Field.Op: b[0] = (byte)m.Value; break;
                case Field.SegmentCount: b[1] = (byte)m.Value; break;
                case Field.FirstSect: b[seg + 4] = (byte)(m.Value % 12); break;
                case Field.LastSect: b[seg + 5] = (byte)(m.Value % 2 == 0 ? m.Value % 12 : m.Value >> 8); break;
                case Field.NearEnd: BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(16), DiskSectors - m.Value % 100); break;
                case Field.NearU64Max: BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(16), ulong.MaxValue - m.Value % 100); break;
                case Field.AnySector: BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(16), m.Value); break;
                case Field.AnyId: BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(8), m.Value % 3 == 0 ? m.Value : 32 + m.Value % 64); break;
                // Another id of the same kind (writes 0–15, reads 16–31), so it may also be in this batch.
                case Field.DuplicateId: BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(8), (ulong)(Id & 16) + m.Value % 16); break;
                case Field.Gref: BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(seg), (uint)m.Value); break;
                case Field.Handle: BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(2), (ushort)m.Value); break;
                case Field.AnyByte: b[(int)(m.Value % BlkifLayout.RequestSize)] = (byte)(m.Value >> 8); break;
            }
        }
    }

    /// <summary>
    /// One push: <see cref="Requests"/> written at req_prod, then <see cref="Stale"/> more slots published
    /// that hold whatever was there; or, when <see cref="Jump"/> is set, only req_prod moved by that much
    /// (more than a ring ahead, or backwards). <see cref="Control"/> is written before the kick.
    /// </summary>
    public sealed record Batch(RequestSpec[] Requests, int Stale, uint? Jump, byte? Control);

    private static readonly Gen<(byte, byte)> GenSegment =
        Gen.Select(Gen.Byte[0, 7], Gen.Byte[0, 7]).Select(t => t.Item1 <= t.Item2 ? (t.Item1, t.Item2) : (t.Item2, t.Item1));

    private static readonly Gen<Mutation> GenMutation =
        Gen.Select(Gen.Enum<Field>(), Gen.ULong, Gen.Int[0, 10]).Select(t => new Mutation(t.Item1, t.Item2, t.Item3));

    public static readonly Gen<RequestSpec> GenRequest =
        Gen.Select(Gen.Bool, Gen.Int[0, 15], Gen.Int[0, int.MaxValue], GenSegment.Array[1, 11],
                Gen.Frequency((4, Gen.Const(Array.Empty<Mutation>())), (5, GenMutation.Array[1, 3])),
                Gen.Frequency((12, Gen.Const((byte[]?)null)), (1, Gen.Byte.Array[BlkifLayout.RequestSize].Select(b => (byte[]?)b))))
            .Select(t => new RequestSpec(t.Item1, t.Item1 ? t.Item2 : 16 + t.Item2, t.Item3, t.Item4, t.Item5, t.Item6));

    private static readonly Gen<uint?> GenJump =
        Gen.Frequency(
            (30, Gen.Const((uint?)null)),
            (1, Gen.UInt[BlkifLayout.RingSlots + 1, 200].Select(j => (uint?)j)),
            (1, Gen.UInt.Where(j => j > BlkifLayout.RingSlots).Select(j => (uint?)j)),
            (1, Gen.UInt[1, 100].Select(j => (uint?)(0u - j))));

    /// <summary>The control byte: mostly untouched, else any value (1 pause, 2 resume, 3 close, others meaningless).</summary>
    private static readonly Gen<byte?> GenControl =
        Gen.Frequency((10, Gen.Const((byte?)null)), (1, Gen.Byte[1, 255].Select(b => (byte?)b)), (1, Gen.Byte[1, 3].Select(b => (byte?)b)));

    public static readonly Gen<Batch> GenBatch =
        Gen.Select(GenRequest.Array[0, 24], Gen.Frequency((8, Gen.Const(0)), (1, Gen.Int[1, 8])), GenJump, GenControl)
            .Select(t => new Batch(t.Item1, Math.Min(t.Item2, BlkifLayout.RingSlots - t.Item1.Length), t.Item3, t.Item4));

    public static readonly Gen<Batch[]> GenBatches = GenBatch.Array[2, 12];
}
