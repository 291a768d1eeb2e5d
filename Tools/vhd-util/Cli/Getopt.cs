namespace BlkTapCtrl.Tools.VhdUtil.Cli;

/// <summary>
/// POSIX getopt as the original's commands use it: "n:s:r" means -n and -s take an argument
/// ("-n x" or "-nx"), -r does not; options may be grouped ("-pv"); non-options are collected (GNU
/// permutation) so the command can reject or use them. Unknown options come back as '?'.
/// </summary>
public sealed class Getopt
{
    public List<(char Option, string? Argument)> Options { get; } = [];
    public List<string> Positionals { get; } = [];
    public bool Invalid { get; private set; }

    public Getopt(IReadOnlyList<string> args, string spec)
    {
        for (int i = 0; i < args.Count; i++)
        {
            var a = args[i];
            if (a == "--")
            {
                Positionals.AddRange(args.Skip(i + 1));
                break;
            }
            if (a.Length < 2 || a[0] != '-')
            {
                Positionals.Add(a);
                continue;
            }
            for (int j = 1; j < a.Length; j++)
            {
                char c = a[j];
                int at = spec.IndexOf(c);
                if (at < 0 || c == ':')
                {
                    Console.Error.WriteLine($"vhd-util: invalid option -- '{c}'");
                    Options.Add(('?', null));
                    Invalid = true;
                    continue;
                }
                bool takesArgument = at + 1 < spec.Length && spec[at + 1] == ':';
                if (!takesArgument)
                {
                    Options.Add((c, null));
                    continue;
                }
                if (j + 1 < a.Length)
                    Options.Add((c, a[(j + 1)..]));
                else if (i + 1 < args.Count)
                    Options.Add((c, args[++i]));
                else
                {
                    Console.Error.WriteLine($"vhd-util: option requires an argument -- '{c}'");
                    Options.Add(('?', null));
                    Invalid = true;
                }
                break;
            }
        }
    }

    /// <summary>strtoull/strtoul as the original parses numbers: leading digits, 0 if none.</summary>
    public static ulong ParseUnsigned(string? s)
    {
        if (s == null) return 0;
        s = s.Trim();
        bool negative = s.StartsWith('-');
        if (negative || s.StartsWith('+')) s = s[1..];
        int n = 0;
        while (n < s.Length && char.IsAsciiDigit(s[n])) n++;
        if (n == 0) return 0;
        var v = ulong.TryParse(s[..n], out var r) ? r : ulong.MaxValue;
        return negative ? unchecked(0 - v) : v;
    }

    /// <summary>sscanf("%llu") semantics: true only when the text starts with a number.</summary>
    public static bool TryParseUnsigned(string? s, out ulong value)
    {
        value = 0;
        if (string.IsNullOrWhiteSpace(s)) return false;
        var t = s.TrimStart();
        if (t.Length == 0 || !(char.IsAsciiDigit(t[0]) || (t[0] == '+' && t.Length > 1 && char.IsAsciiDigit(t[1]))))
            return false;
        value = ParseUnsigned(t);
        return true;
    }
}
