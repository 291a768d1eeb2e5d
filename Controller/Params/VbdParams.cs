using BlkTapCtrl.Protocol.Control;

namespace BlkTapCtrl.Controller.Params;

/// <summary>
/// The parsed <c>params</c> (<c>type:path</c>) of a VBD with its <c>sm-data</c> overrides (reference §1.4).
/// </summary>
public sealed record VbdParams(DriverType Driver, string Handle, string VdiPath, StorageType Storage)
{
    /// <summary>The original's params buffer: strlen + 1 must stay below this.</summary>
    public const int MaxParamsLength = 256;

    // The original's disk-type table by driver id; null handles are types it knows by name but cannot run.
    private static readonly (string Name, DriverType? Driver)[] Table =
    [
        ("aio", DriverType.Aio), ("sync", null), ("vmdk", null), ("vhdsync", null), ("vhd", DriverType.Vhd),
        ("ram", DriverType.Ram), ("qcow", null), ("bc", DriverType.BlockCache), ("vhdi", DriverType.VhdIndex),
        ("log", DriverType.Log),
    ];

    /// <summary>
    /// Parses <paramref name="params"/>; <paramref name="vdiType"/> (sm-data/vdi-type) replaces the prefix and
    /// <paramref name="storageType"/> (sm-data/storage-type) picks nfs/ext/lvm (ext when absent or unknown).
    /// Throws <see cref="ParamsException"/> naming the field and value when invalid.
    /// </summary>
    public static VbdParams Parse(string @params, string? vdiType = null, string? storageType = null)
    {
        if (System.Text.Encoding.UTF8.GetByteCount(@params) + 1 >= MaxParamsLength)
            throw new ParamsException($"params is {@params.Length} characters, at most {MaxParamsLength - 2} fit");
        int colon = @params.IndexOf(':');
        if (colon < 0)
            throw new ParamsException($"params '{@params}' has no ':' between type and path");
        string handle = @params[..colon];
        string path = @params[(colon + 1)..];
        if (handle.Length > 9)
            throw new ParamsException($"params type '{handle}' is longer than 9 characters");
        if (vdiType != null)
        {
            if (vdiType.Length >= 9)
                throw new ParamsException($"sm-data/vdi-type '{vdiType}' is longer than 8 characters");
            handle = vdiType;
        }
        var driver = Lookup(handle) ?? throw new ParamsException($"params type '{handle}' is not a supported disk type");
        if (path.Length == 0)
            throw new ParamsException($"params '{@params}' has an empty path");
        return new VbdParams(driver, handle, path, ParseStorage(storageType));
    }

    /// <summary>nfs = 1, ext = 2, lvm = 3; anything else (or absent) = ext.</summary>
    public static StorageType ParseStorage(string? storageType) => storageType switch
    {
        "nfs" => StorageType.Nfs,
        "lvm" => StorageType.Lvm,
        _ => StorageType.Ext,
    };

    // An exact name wins; otherwise the original's prefix comparison (only as many characters as the
    // params prefix has) in table order. A match on an entry without a driver is invalid (-EINVAL).
    private static DriverType? Lookup(string handle)
    {
        if (handle.Length == 0) return null;
        foreach (var (name, driver) in Table)
            if (name == handle) return driver;
        foreach (var (name, driver) in Table)
            if (name.StartsWith(handle, StringComparison.Ordinal)) return driver;
        return null;
    }
}

/// <summary>Invalid params / sm-data (the original's -EINVAL at "gathering parameters").</summary>
public sealed class ParamsException(string message) : Exception(message);
