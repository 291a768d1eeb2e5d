using System.Text;
using BlkTapCtrl.Protocol.ControlSocket;

namespace BlkTapCtrl.Tools.TapCtl;

/// <summary>The <c>tap-ctl list</c> table: one line per VBD, columns padded to their widest cell.</summary>
public static class ListTable
{
    private static readonly string[] Header =
        ["domid", "devid", "minor", "cookie", "channel", "vbd", "shutdown", "pid", "image", "nbd", "ring"];

    /// <summary>The chain the worker has open (leaf &lt; parent &lt; …), else the params the controller last read.</summary>
    private static string Image(ChannelInfo c)
    {
        string image = c.Images.Count > 0 ? string.Join(" < ", c.Images) : c.Params;
        return image.Length == 0 ? "-" : image + (c.ReadOnly ? " (ro)" : "");
    }

    public static string Format(IReadOnlyList<ChannelInfo> channels)
    {
        var rows = new List<string[]> { Header };
        foreach (var c in channels.OrderBy(c => c.DomId).ThenBy(c => c.DevId))
            rows.Add([
                c.DomId.ToString(System.Globalization.CultureInfo.InvariantCulture),
                c.DevId.ToString(System.Globalization.CultureInfo.InvariantCulture),
                c.Minor < 0 ? "-" : c.Minor.ToString(System.Globalization.CultureInfo.InvariantCulture),
                c.Cookie.ToString(System.Globalization.CultureInfo.InvariantCulture),
                c.ChannelState.ToLowerInvariant(),
                c.VbdState.ToLowerInvariant(),
                c.ShutdownState.ToLowerInvariant() + (c.ShutdownForce ? "+force" : ""),
                c.Pid == 0 ? "-" : c.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture),
                Image(c),
                c.NbdSocket.Length == 0 ? "-" : c.NbdSocket,
                c.Ring.Length == 0 ? "-" : c.Ring,
            ]);
        var widths = new int[Header.Length];
        foreach (var row in rows)
            for (int i = 0; i < row.Length; i++)
                widths[i] = Math.Max(widths[i], row[i].Length);
        var text = new StringBuilder();
        foreach (var row in rows)
        {
            for (int i = 0; i < row.Length; i++)
            {
                if (i > 0) text.Append("  ");
                text.Append(i == row.Length - 1 ? row[i] : row[i].PadRight(widths[i]));
            }
            text.Append('\n');
        }
        return text.ToString();
    }
}
