namespace BlkTapCtrl.Worker.Lvm;

/// <summary>
/// The names an LVHD SR gives its volumes (reference §3.5 resume): <c>&lt;dev&gt;/VG_&lt;name&gt;-&lt;sr uuid&gt;/LV-&lt;vdi uuid&gt;</c>
/// for a raw VDI and <c>…/VHD-&lt;vdi uuid&gt;</c> for a VHD one. A live snapshot of a raw VDI renames its writable
/// volume from <c>LV-</c> to <c>VHD-</c>, but XenStore — so the controller's RESUME — still carries the old name.
/// Parsed by hand, not with a regular expression: the worker is NativeAOT and every library it links is paid
/// for at each start.
/// </summary>
public static class LvhdVolumeName
{
    public const string RawPrefix = "LV-", VhdPrefix = "VHD-", VolumeGroupPrefix = "VG_";
    private const int UuidLength = 36;

    /// <summary>
    /// The <c>VHD-</c> name of the raw volume <paramref name="path"/> (a volume group directory directly under
    /// <paramref name="deviceDirectory"/>), or null and <paramref name="why"/> when the path is not an LVHD
    /// <c>LV-</c> volume name.
    /// </summary>
    public static string? VhdNameOfRawVolume(string path, string deviceDirectory, out string why)
    {
        string root = deviceDirectory.TrimEnd('/') + "/";
        why = "";
        string[] parts = path.StartsWith(root, StringComparison.Ordinal) ? path[root.Length..].Split('/') : [];
        if (parts.Length != 2 || !IsVolumeGroup(parts[0]))
        {
            why = $"'{path}' is not an LVHD volume name ({root}{VolumeGroupPrefix}<name>-<sr uuid>/{RawPrefix}|{VhdPrefix}<vdi uuid>)";
            return null;
        }
        string volume = parts[1];
        if (volume.StartsWith(VhdPrefix, StringComparison.Ordinal) && IsUuid(volume.AsSpan(VhdPrefix.Length)))
        {
            why = $"'{path}' already names a VHD volume";
            return null;
        }
        if (!volume.StartsWith(RawPrefix, StringComparison.Ordinal) || !IsUuid(volume.AsSpan(RawPrefix.Length)))
        {
            why = $"'{path}': volume '{volume}' is neither {RawPrefix}<vdi uuid> nor {VhdPrefix}<vdi uuid>";
            return null;
        }
        return root + parts[0] + "/" + VhdPrefix + volume[RawPrefix.Length..];
    }

    /// <summary><c>VG_&lt;letters and digits&gt;-&lt;uuid&gt;</c>.</summary>
    private static bool IsVolumeGroup(string name)
    {
        if (!name.StartsWith(VolumeGroupPrefix, StringComparison.Ordinal) || name.Length < VolumeGroupPrefix.Length + 2 + UuidLength)
            return false;
        var label = name.AsSpan(VolumeGroupPrefix.Length, name.Length - VolumeGroupPrefix.Length - UuidLength - 1);
        foreach (char c in label)
            if (!char.IsAsciiLetterOrDigit(c)) return false;
        return name[^(UuidLength + 1)] == '-' && IsUuid(name.AsSpan(name.Length - UuidLength));
    }

    /// <summary>8-4-4-4-12 groups of letters and digits (the SR manager's uuids; LVHD never checks they are hex).</summary>
    private static bool IsUuid(ReadOnlySpan<char> s)
    {
        if (s.Length != UuidLength) return false;
        for (int i = 0; i < s.Length; i++)
        {
            bool dash = i is 8 or 13 or 18 or 23;
            if (dash ? s[i] != '-' : !char.IsAsciiLetterOrDigit(s[i])) return false;
        }
        return true;
    }
}
