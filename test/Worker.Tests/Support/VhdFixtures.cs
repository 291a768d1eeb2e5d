using BlkTapCtrl.Testing;
using BlkTapCtrl.Vhd.Format;
using BlkTapCtrl.Vhd.Image;
using BlkTapCtrl.Vhd.Operations;

namespace BlkTapCtrl.Worker.Tests.Support;

/// <summary>VHD images for driver tests, written with the Vhd library, and the byte model of their content.</summary>
public static class VhdFixtures
{
    public static byte[] Pattern(int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    public static string Dynamic(TempDir dir, string name, int mib)
    {
        string path = dir[name];
        VhdCreator.Create(path, new VhdCreateOptions { SizeBytes = (ulong)mib << 20, Type = DiskType.Dynamic });
        return path;
    }

    public static string Snapshot(TempDir dir, string name, string parent, bool rawParent = false)
    {
        string path = dir[name];
        VhdCreator.Create(path, new VhdCreateOptions { Type = DiskType.Differencing, ParentPath = parent, ParentIsRaw = rawParent });
        return path;
    }

    /// <summary>Writes through the library (libvhd-style synchronous writes) and into the model.</summary>
    public static void WriteWithLibrary(string path, byte[] model, long sector, byte[] data)
    {
        using var image = VhdImage.Open(path);
        image.Write(sector, data);
        image.FlushMetadata();
        data.CopyTo(model, sector * 512);
    }

    /// <summary>
    /// base.vhd (dynamic, 16 MiB, data in blocks 0–2 and a partial block 6) ← mid.vhd (data across the
    /// block 1/2 boundary and in block 5) ← leaf.vhd (a few sectors in block 0). Returns the leaf and the model.
    /// </summary>
    public static (string Leaf, byte[] Model) ThreeDeepChain(TempDir dir)
    {
        var model = new byte[16 << 20];
        string b = Dynamic(dir, "base.vhd", 16);
        WriteWithLibrary(b, model, 0, Pattern(3 << 20, 1));
        WriteWithLibrary(b, model, 6 * 4096 + 100, Pattern(37 * 512, 2));
        string m = Snapshot(dir, "mid.vhd", b);
        WriteWithLibrary(m, model, 4096 - 64, Pattern(200 * 512, 3));
        WriteWithLibrary(m, model, 5 * 4096 + 8, Pattern(1 << 20, 4));
        string l = Snapshot(dir, "leaf.vhd", m);
        WriteWithLibrary(l, model, 17, Pattern(9 * 512, 5));
        return (l, model);
    }

    /// <summary>The whole virtual disk read through the library's chain.</summary>
    public static byte[] ReadWithLibrary(string path)
    {
        using var chain = VhdChain.Open(path, VhdOpenFlags.ReadOnly);
        var all = new byte[chain.VirtualSectors * 512];
        chain.Read(0, all);
        return all;
    }
}
