using BlkTapCtrl.Testing;
using BlkTapCtrl.Vhd.Format;
using BlkTapCtrl.Vhd.Image;
using BlkTapCtrl.Vhd.Operations;
using CsCheck;

namespace BlkTapCtrl.Vhd.Tests.Property;

/// <summary>
/// Random writes, snapshots, coalesces and resizes against an in-memory model of the disk: after every
/// step the content read through the chain equals the model and check passes on every file.
/// </summary>
public class ChainModelPropertyTests
{
    public enum OpKind { Write, Snapshot, Coalesce, Grow }

    public sealed record Op(OpKind Kind, long Sector, int Count, int Seed, int GrowBlocks)
    {
        public override string ToString() => Kind switch
        {
            OpKind.Write => $"Write({Sector}, {Count}, seed {Seed})",
            OpKind.Grow => $"Grow(+{GrowBlocks} blocks)",
            _ => Kind.ToString(),
        };
    }

    private static readonly Gen<Op> GenWrite =
        Gen.Select(Gen.Long[0, 8 * 4096], Gen.Frequency((3, Gen.Int[1, 64]), (1, Gen.Int[1, 9000])), Gen.Int,
            (s, n, seed) => new Op(OpKind.Write, s, n, seed, 0));

    private static readonly Gen<Op> GenOp = Gen.Frequency(
        (8, GenWrite),
        (2, Gen.Const(new Op(OpKind.Snapshot, 0, 0, 0, 0))),
        (2, Gen.Const(new Op(OpKind.Coalesce, 0, 0, 0, 0))),
        (1, Gen.Int[1, 2].Select(b => new Op(OpKind.Grow, 0, 0, 0, b))));

    [Test]
    public void Chain_content_equals_model_and_check_passes_after_every_step()
    {
        GenOp.Array[1, 10].Sample(ops => Run(ops), iter: 6, threads: 1, print: ops => string.Join(", ", ops.Select(o => o.ToString())));
    }

    private static void Run(Op[] ops)
    {
        using var dir = new TempDir("vprop");
        var files = new List<string> { dir["0.vhd"] };   // base first, leaf last
        VhdCreator.Create(files[0], new VhdCreateOptions { SizeBytes = 8UL << 20 });
        var model = new byte[8 << 20];
        // One read-back buffer for every step: a fresh 8 MiB array per step costs thousands of first-touch
        // page faults, which on this VM took more CPU than the reads through the chain themselves.
        var readBack = new byte[model.Length];
        int next = 1;
        foreach (var op in ops)
        {
            var leaf = files[^1];
            switch (op.Kind)
            {
                case OpKind.Write:
                {
                    long total = model.Length / 512;
                    long sector = op.Sector % total;
                    int count = (int)Math.Min(op.Count, total - sector);
                    var data = new byte[count * 512];
                    new Random(op.Seed).NextBytes(data);
                    using (var chain = VhdChain.Open(leaf)) chain.Write(sector, data);
                    data.CopyTo(model, sector * 512);
                    break;
                }
                case OpKind.Snapshot:
                {
                    var child = dir[$"{next++}.vhd"];
                    VhdCreator.Create(child, new VhdCreateOptions { Type = DiskType.Differencing, ParentPath = leaf });
                    files.Add(child);
                    break;
                }
                case OpKind.Coalesce:
                {
                    if (files.Count < 2) break;
                    var parent = files[^2];
                    using (var p = VhdImage.Open(parent, VhdOpenFlags.ReadOnly))
                    using (var c = VhdImage.Open(leaf, VhdOpenFlags.ReadOnly))
                        if (p.Footer.CurrentSize < c.Footer.CurrentSize)
                        {
                            p.Dispose();
                            VhdResizer.JournaledResize(parent, c.Footer.CurrentSize, parent + ".journal");
                        }
                    VhdEditor.Coalesce(leaf);
                    File.Delete(leaf);
                    files.RemoveAt(files.Count - 1);
                    break;
                }
                case OpKind.Grow:
                {
                    ulong newSize = (ulong)model.Length + ((ulong)op.GrowBlocks << 21);
                    VhdResizer.JournaledResize(leaf, newSize, leaf + ".journal");
                    Array.Resize(ref model, (int)newSize);
                    readBack = new byte[model.Length];
                    break;
                }
            }
            Verify(files, model, readBack, op);
        }
    }

    private static void Verify(List<string> files, byte[] model, byte[] actual, Op op)
    {
        using (var chain = VhdChain.Open(files[^1], VhdOpenFlags.ReadOnly))
        {
            Assert.That(chain.Depth, Is.EqualTo(files.Count));
            Assert.That(chain.VirtualSectors * 512, Is.EqualTo(model.Length), $"size after {op}");
            chain.Read(0, actual);
            if (!actual.AsSpan().SequenceEqual(model))
            {
                int at = actual.AsSpan().CommonPrefixLength(model);
                Assert.Fail($"after {op}: content differs from the model at byte {at} (sector {at / 512})");
            }
        }
        foreach (var f in files)
        {
            var report = VhdChecker.Check(f);
            Assert.That(report.Problems, Is.Empty, $"check {Path.GetFileName(f)} after {op}");
        }
    }
}
