namespace BlkTapCtrl.Controller.Channels;

/// <summary>
/// A backend watch path accepted for probe/remove (reference §1.3): exactly
/// <c>/local/domain/&lt;n&gt;/backend/tap/&lt;domid&gt;/&lt;devid&gt;</c>, numbers only, nothing after devid.
/// </summary>
public readonly record struct BackendPath(int Dom0, int DomId, int DevId, string Path)
{
    public static BackendPath? TryParse(string path)
    {
        var parts = path.Split('/');
        // "", local, domain, n, backend, tap, domid, devid
        if (parts.Length != 8 || parts[0] != "" || parts[1] != "local" || parts[2] != "domain" || parts[4] != "backend" || parts[5] != "tap")
            return null;
        if (!TryNumber(parts[3], out int dom0) || !TryNumber(parts[6], out int domId) || !TryNumber(parts[7], out int devId))
            return null;
        return new BackendPath(dom0, domId, devId, path);
    }

    private static bool TryNumber(string s, out int value) =>
        int.TryParse(s, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out value);
}
