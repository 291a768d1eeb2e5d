using BlkTapCtrl.Testing;
using BlkTapCtrl.Vhd.Format;
using BlkTapCtrl.Vhd.Image;
using BlkTapCtrl.Vhd.Operations;
using BlkTapCtrl.Vhd.Tests.Support;
using CsCheck;

namespace BlkTapCtrl.Vhd.Tests.Property;

/// <summary>
/// Random and mutated images: opening, reading through the chain and checking may fail only with
/// the library's <see cref="VhdFormatException"/>, never hang, and never write to a read-only file.
/// </summary>
public class ParserFuzzTests
{
    private static TempDir _golden = null!;
    private static byte[] _leaf = null!;

    [OneTimeSetUp]
    public void Unpack()
    {
        _golden = new TempDir("vfz");
        GoldenImages.Unpack(_golden);
        _leaf = File.ReadAllBytes(_golden["leaf.vhd"]);
    }

    [OneTimeTearDown]
    public void Clean() => _golden.Dispose();

    /// <summary>Read buffer reused across cases (a fresh 1 MiB array per case costs first-touch page faults).</summary>
    private static readonly ThreadLocal<byte[]> ReadBuffer = new(() => new byte[1 << 20]);

    private static void Exercise(string dir, string path)
    {
        // Any write(2) to the file moves its mtime (after a stat the kernel stamps the next change
        // finely enough to be seen), so an unchanged mtime and length prove the read-only open wrote
        // nothing, without reading the megabytes of every image twice per case.
        var before = (File.GetLastWriteTimeUtc(path), new FileInfo(path).Length);
        var started = DateTime.UtcNow;
        try
        {
            using var chain = VhdChain.Open(path, VhdOpenFlags.ReadOnly);
            var buf = ReadBuffer.Value!;
            for (long s = 0; s < chain.VirtualSectors && s < 64 * 2048; s += 2048)
                chain.Read(s, buf.AsSpan(0, (int)Math.Min(2048, chain.VirtualSectors - s) * 512));
        }
        catch (VhdFormatException) { }
        try { VhdChecker.Check(path); }
        catch (VhdFormatException) { }
        Assert.That((File.GetLastWriteTimeUtc(path), new FileInfo(path).Length), Is.EqualTo(before), "a read-only open must not write");
        Assert.That(DateTime.UtcNow - started, Is.LessThan(TimeSpan.FromSeconds(10)), "no hang");
    }

    /// <summary>Byte mutations concentrated on the metadata (footers, header, BAT, batmap, locators).</summary>
    private static readonly Gen<(int Image, (int Pos, byte Value)[] Mutations)> GenMutation =
        Gen.Select(Gen.Int[0, 2],
            Gen.Select(Gen.Frequency((5, Gen.Int[0, 4607]), (2, Gen.Int[-512, -1]), (1, Gen.Int[0, 1 << 22])), Gen.Byte).Array[1, 12]);

    [Test]
    public void Mutated_golden_images_fail_only_with_the_format_exception() =>
        GenMutation.Sample(ExerciseMutation, iter: 40, threads: 1);

    /// <summary>
    /// A case CI found: a mutated u64 offset with its top bit set became a negative file offset, and
    /// pread threw ArgumentOutOfRangeException instead of the library's format error.
    /// </summary>
    [Test]
    public void A_u64_offset_with_its_top_bit_set_is_a_format_error() =>
        GenMutation.Sample(ExerciseMutation, iter: 40, threads: 1, seed: "fwaFy2CcbVJ2");

    private static void ExerciseMutation((int Image, (int Pos, byte Value)[] Mutations) t)
    {
        using var dir = new TempDir("vfz");
        var name = new[] { "leaf.vhd", "mid.vhd", "base.vhd" }[t.Image];
        // Unmutated images are links to the pristine copies (read-only use only).
        foreach (var other in new[] { "leaf.vhd", "mid.vhd", "base.vhd" })
            if (other != name)
                File.CreateSymbolicLink(dir[other], _golden[other]);
        // A kernel-side copy of the pristine image, then the mutated bytes poked in place.
        long length = new FileInfo(_golden[name]).Length;
        File.Copy(_golden[name], dir[name]);
        using (var h = File.OpenHandle(dir[name], FileMode.Open, FileAccess.Write))
            foreach (var (pos, value) in t.Mutations)
                RandomAccess.Write(h, [value], pos < 0 ? length + pos : pos % length);
        Exercise(dir.Path, dir["leaf.vhd"]);
        if (name != "leaf.vhd")
            Exercise(dir.Path, dir[name]);
    }

    [Test]
    public void Random_and_truncated_files_fail_only_with_the_format_exception()
    {
        Gen.Select(Gen.Int[0, 6000], Gen.Int, Gen.Bool).Sample((len, seed, fromGolden) =>
        {
            using var dir = new TempDir("vfz");
            byte[] bytes;
            if (fromGolden)
                bytes = _leaf.AsSpan(0, Math.Min(len, _leaf.Length)).ToArray(); // truncated
            else
            {
                bytes = new byte[len];
                new Random(seed).NextBytes(bytes);
                if (len >= 512 && seed % 2 == 0)
                    "conectix"u8.CopyTo(bytes.AsSpan(len - 512)); // get past the cookie now and then
            }
            File.WriteAllBytes(dir["x.vhd"], bytes);
            Exercise(dir.Path, dir["x.vhd"]);
        }, iter: 150, threads: 1);
    }

    [Test]
    public void Footer_header_and_bat_parsers_accept_any_bytes_without_other_exceptions()
    {
        Gen.Byte.Array[1024].Sample(b =>
        {
            var f = VhdFooter.Parse(b);
            try { f.Validate(); } catch (VhdFormatException) { }
            _ = f.Problems(0);
            var h = DynamicHeader.Parse(b);
            try { h.Validate(f.CurrentSize); } catch (VhdFormatException) { }
            _ = h.Problems(1 << 20);
            _ = h.ParentName;
            _ = BlockAllocationTable.Parse(b, 256);
            var bh = BatmapHeader.Parse(b);
            _ = bh.ComputeChecksum(b, f.CurrentSize);
            foreach (var loc in h.Locators)
            {
                try { _ = ParentLocator.Decode(loc.Code, b.AsSpan(0, (int)(loc.DataLength % 1024))); }
                catch (VhdFormatException) { }
            }
        }, iter: 2000);
    }
}
