using System.Globalization;

namespace BlkTapCtrl.Controller;

/// <summary>
/// The XenStore keys of one VBD (reference §1.2): <c>P = /local/domain/&lt;dom0&gt;/backend/tap/&lt;domid&gt;/&lt;devid&gt;</c>.
/// </summary>
public sealed class XenStoreKeys
{
    public XenStoreKeys(string backendPath) => Backend = backendPath;

    public string Backend { get; }
    public string TapdiskUuid => Backend + "/tapdisk-uuid";
    public string Frontend => Backend + "/frontend";
    public string Params => Backend + "/params";
    public string Mode => Backend + "/mode";
    public string VdiType => Backend + "/sm-data/vdi-type";
    public string StorageType => Backend + "/sm-data/storage-type";
    public string TapdiskRequest => Backend + "/tapdisk-request";
    public string Pause => Backend + "/pause";
    public string PauseDone => Backend + "/pause-done";
    public string TapdiskPid => Backend + "/tapdisk-pid";
    public string Sectors => Backend + "/sectors";
    public string SectorSize => Backend + "/sector-size";
    public string Info => Backend + "/info";
    public string BackdevNode => Backend + "/backdev-node";
    public string BackdevPath => Backend + "/backdev-path";
    public string TapdiskError => Backend + "/tapdisk-error";
    /// <summary>Our extension: the unix socket of the worker's NBD export of this VBD.</summary>
    public string NbdSocket => Backend + "/nbd-socket";
    /// <summary>Our extension: the shared-memory ring device given to the worker when no kernel driver exists.</summary>
    public string RingDevice => Backend + "/ring-device";

    /// <summary>The backend root watched for probe/remove: <c>/local/domain/&lt;dom0&gt;/backend/tap</c>.</summary>
    public static string BackendRoot(int dom0) => $"/local/domain/{dom0.ToString(CultureInfo.InvariantCulture)}/backend/tap";

    /// <summary>Feature flags; the original hard-codes domain 0 here.</summary>
    public const string ShareTapdisks = "/local/domain/0/tapdisk/share-tapdisks";
    public const string AddCache = "/local/domain/0/tapdisk/add-cache";
    public const string VhdIndex = "/local/domain/0/tapdisk/vhd-index";
    public const string LogDirty = "/local/domain/0/tapdisk/log-dirty";
}
