namespace BlkTapCtrl.Controller.Startup;

/// <summary>Syslog facilities by name or number, as <c>-l</c> accepts them (reference §1.1).</summary>
public static class SyslogFacility
{
    public const int Daemon = 3 << 3;

    private static readonly Dictionary<string, int> Names = new(StringComparer.OrdinalIgnoreCase)
    {
        ["kern"] = 0 << 3, ["user"] = 1 << 3, ["mail"] = 2 << 3, ["daemon"] = 3 << 3, ["auth"] = 4 << 3,
        ["syslog"] = 5 << 3, ["lpr"] = 6 << 3, ["news"] = 7 << 3, ["uucp"] = 8 << 3, ["cron"] = 9 << 3,
        ["authpriv"] = 10 << 3, ["ftp"] = 11 << 3,
        ["local0"] = 16 << 3, ["local1"] = 17 << 3, ["local2"] = 18 << 3, ["local3"] = 19 << 3,
        ["local4"] = 20 << 3, ["local5"] = 21 << 3, ["local6"] = 22 << 3, ["local7"] = 23 << 3,
    };

    /// <summary>The facility's name for a code (<c>daemon</c> for 24): what every worker gets as <c>-l&lt;name&gt;</c>.</summary>
    public static string NameOf(int code) =>
        Names.FirstOrDefault(kv => kv.Value == code).Key ?? throw new ArgumentOutOfRangeException(nameof(code), code, "not a syslog facility code");

    /// <summary>
    /// A facility name (<c>daemon</c>, <c>local3</c>) or its code as a number (a multiple of 8 up to 184,
    /// or a bare index 0..23 which is shifted). Null when neither.
    /// </summary>
    public static int? Parse(string text)
    {
        if (Names.TryGetValue(text, out int code))
            return code;
        if (int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n))
        {
            if (n is >= 0 and <= 23) return n << 3;
            if (n % 8 == 0 && n <= 23 << 3) return n;
        }
        return null;
    }
}
