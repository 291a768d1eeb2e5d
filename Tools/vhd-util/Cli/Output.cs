using System.Text;

namespace BlkTapCtrl.Tools.VhdUtil.Cli;

/// <summary>
/// stdout as one byte stream, because read's dumps interleave text lines and raw bitmaps/data in
/// the order the original wrote them. Lines end in "\n" as printf wrote them.
/// </summary>
public static class Output
{
    private static readonly Stream Stdout = Console.OpenStandardOutput();

    public static void Write(string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        Stdout.Write(bytes);
    }

    public static void Line(string text = "") => Write(text + "\n");

    public static void Raw(ReadOnlySpan<byte> data) => Stdout.Write(data);

    public static void Flush() => Stdout.Flush();

    /// <summary>The original's conv(hex, n): "%#llx" (0 stays "0") or "%llu".</summary>
    public static string Conv(bool hex, ulong n) => hex ? (n == 0 ? "0" : "0x" + n.ToString("x")) : n.ToString();

    public static string Conv(bool hex, long n) => Conv(hex, unchecked((ulong)n));
}
