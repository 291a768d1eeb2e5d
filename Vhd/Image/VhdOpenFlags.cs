namespace BlkTapCtrl.Vhd.Image;

[Flags]
public enum VhdOpenFlags
{
    None = 0,
    /// <summary>Open the file read-only: the library then cannot write to it at all.</summary>
    ReadOnly = 1,
    /// <summary>Accept a footer whose cookie is "v_poison" (a disabled image).</summary>
    IgnoreDisabled = 2,
    /// <summary>Do not reject BAT entries that point outside the data area or overlap (check/read/repair look at broken images).</summary>
    Lenient = 4,
}
