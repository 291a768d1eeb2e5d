using System.Globalization;

namespace BlkTapCtrl.Worker.Lvm;

/// <summary>
/// How tapdisk reactivates LVM volumes. The controller spawns tapdisk with a fixed command line (§1.5), so
/// the settings come from the environment it passes down: <c>TAPDISK_LVCHANGE</c> (the lvchange program,
/// default <c>lvchange</c> from PATH), <c>TAPDISK_DEV_MAPPER</c> (where a parent locator's <c>./&lt;lv&gt;</c>
/// names resolve, default <c>/dev/mapper</c>), <c>TAPDISK_DEV_DIR</c> (where the volume group directories of
/// RESUME's <c>VG_…/LV-…</c> names live, default <c>/dev</c>) and <c>TAPDISK_LVM_RETRY_MS</c> (pause between
/// walks, default 1000).
/// </summary>
public sealed record LvmOptions
{
    public const int DefaultWalkAttempts = 10;

    public string Lvchange { get; init; } = "lvchange";
    public string DeviceMapperDirectory { get; init; } = "/dev/mapper";

    /// <summary>The directory holding <c>VG_&lt;name&gt;-&lt;sr uuid&gt;/</c> (see <see cref="LvhdVolumeName"/>).</summary>
    public string DeviceDirectory { get; init; } = "/dev";

    /// <summary>Whole walks tried before reactivation fails (upstream after CA-40171: 10).</summary>
    public int WalkAttempts { get; init; } = DefaultWalkAttempts;

    /// <summary>Pause between two walks (upstream: 1 s).</summary>
    public long RetryIntervalMicroseconds { get; init; } = 1_000_000;

    /// <summary>An lvchange that hangs longer than this is killed and counts as failed.</summary>
    public TimeSpan CommandTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Settings from the environment; a malformed value is an <see cref="ArgumentException"/> naming it.</summary>
    public static LvmOptions FromEnvironment()
    {
        var o = new LvmOptions();
        if (Environment.GetEnvironmentVariable("TAPDISK_LVCHANGE") is { Length: > 0 } lvchange)
            o = o with { Lvchange = lvchange };
        if (Environment.GetEnvironmentVariable("TAPDISK_DEV_MAPPER") is { Length: > 0 } mapper)
            o = o with { DeviceMapperDirectory = mapper };
        if (Environment.GetEnvironmentVariable("TAPDISK_DEV_DIR") is { Length: > 0 } dev)
            o = o with { DeviceDirectory = dev };
        if (Environment.GetEnvironmentVariable("TAPDISK_LVM_RETRY_MS") is { Length: > 0 } retry)
        {
            if (!long.TryParse(retry, NumberStyles.None, CultureInfo.InvariantCulture, out long ms) || ms > 60_000)
                throw new ArgumentException($"tapdisk: TAPDISK_LVM_RETRY_MS '{retry}' is not a number of milliseconds from 0 to 60000");
            o = o with { RetryIntervalMicroseconds = ms * 1000 };
        }
        return o;
    }
}
