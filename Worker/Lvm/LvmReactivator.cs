using BlkTapCtrl.Protocol.Control;
using BlkTapCtrl.Vhd;
using BlkTapCtrl.Vhd.Format;
using BlkTapCtrl.Vhd.Image;
using BlkTapCtrl.Worker.Interop;
using BlkTapCtrl.Worker.Logging;
using BlkTapCtrl.Worker.Scheduling;
using BlkTapCtrl.Worker.Vbd;

namespace BlkTapCtrl.Worker.Lvm;

/// <summary>
/// LVM reactivation with parent validation (reference §3.9, CA-40171). For LVM storage only: walk from the
/// VBD's volume, activate each with <c>lvchange -ay --refresh</c>, stop at a name without <c>VHD</c>, open the
/// VHD read-only and check that its footer uuid is the uuid its child recorded as parent, stop at a
/// non-differencing disk, else follow the MACX locator <c>./&lt;lv&gt;</c> into the device-mapper directory.
/// <para>Why the uuid check: the master may be resizing or reparenting an LV while we activate it; its last
/// sector then holds a stale footer and the locators may point elsewhere, so a walk without the check
/// activates the wrong volumes or runs off into the weeds. Reparenting rewrites uuid and locators
/// non-atomically, so any failure restarts the whole walk from the leaf, <see cref="LvmOptions.WalkAttempts"/>
/// times, <see cref="LvmOptions.RetryIntervalMicroseconds"/> apart (upstream's later form).</para>
/// </summary>
public sealed class LvmReactivator(LvmOptions options, WorkerLog log, IClock clock) : ILvmReactivator
{
    private const string Function = "tapdisk_vbd_reactivate_volumes";
    private readonly Lvchange _lvchange = new(options);

    public LvmOptions Options => options;

    /// <summary>Whole walks started so far (tests read it to see the retries).</summary>
    public int Walks { get; private set; }

    public int Reactivate(VbdOpenParameters parameters)
    {
        if (parameters.Storage != StorageType.Lvm) return 0;
        int err = 0;
        string why = "";
        for (int attempt = 1; attempt <= options.WalkAttempts; attempt++)
        {
            Walks++;
            err = Walk(parameters.Path, out why);
            if (err == 0)
            {
                log.Info(Function, $"{parameters.Path}: reactivated");
                return 0;
            }
            if (attempt < options.WalkAttempts)
            {
                log.Warn(Function, $"{parameters.Path}: walk {attempt} of {options.WalkAttempts} failed, retrying from the leaf: {why}");
                clock.Sleep(options.RetryIntervalMicroseconds);
            }
        }
        log.Error(err, Function, $"{parameters.Path}: reactivation failed after {options.WalkAttempts} walks: {why}");
        return err;
    }

    /// <summary>
    /// RESUME's name check (§3.5): activate the named volume; when that fails and the name is an LVHD raw volume
    /// (<c>…/VG_x-&lt;sr&gt;/LV-&lt;vdi&gt;</c>), activate <c>…/VHD-&lt;vdi&gt;</c> (its failure is only logged, as the
    /// original's) and, if that path exists, resume from it with the vhd driver: a live snapshot of a raw VDI
    /// renamed the volume and the RESUME message cannot know.
    /// </summary>
    public int CheckResumeVolume(VbdOpenParameters parameters, out VbdOpenParameters resolved)
    {
        const string function = "tapdisk_vbd_check_file";
        resolved = parameters;
        if (parameters.Storage != StorageType.Lvm) return 0;
        string name = parameters.Path;
        if (_lvchange.Activate(name, out string why) == 0) return 0;
        log.Warn(function, $"reactivating {name} failed: {why}");
        string? vhd = LvhdVolumeName.VhdNameOfRawVolume(name, options.DeviceDirectory, out string notLvhd);
        if (vhd == null)
        {
            log.Error(Errno.EINVAL, function, notLvhd);
            return -Errno.EINVAL;
        }
        if (_lvchange.Activate(vhd, out why) != 0)
            log.Warn(function, $"reactivating {vhd} failed: {why}");
        if (!Path.Exists(vhd))
        {
            log.Error(Errno.ENOENT, function, $"neither {name} nor {vhd} accessible");
            return -Errno.ENOENT;
        }
        log.Warn(function, $"couldn't find {name}, trying {vhd}");
        resolved = parameters with { Path = vhd, Type = DriverType.Vhd };
        return 0;
    }

    /// <summary>One walk from the leaf. Returns 0, or a negative errno and what went wrong.</summary>
    private int Walk(string leaf, out string why)
    {
        string name = leaf;
        string? child = null;
        Guid expectedUuid = Guid.Empty;
        for (int depth = 0; depth < VhdLimits.MaxChainDepth; depth++)
        {
            int err = _lvchange.Activate(name, out why);
            if (err != 0) return err;
            if (!name.Contains("VHD", StringComparison.Ordinal)) return 0;

            VhdImage image;
            try { image = VhdImage.Open(name, VhdOpenFlags.ReadOnly); }
            catch (VhdFormatException e)
            {
                why = $"cannot open {name}: {e.Message}";
                return -e.Errno;
            }
            catch (IOException e)
            {
                why = $"cannot open {name}: {e.Message}";
                return -Errno.EIO;
            }
            using (image)
            {
                if (child != null && image.Footer.Uuid != expectedUuid)
                {
                    why = $"parent uuid mismatch: {name} has uuid {image.Footer.Uuid}, its child {child} expects parent uuid {expectedUuid}";
                    return -Errno.EINVAL;
                }
                if (!image.IsDifferencing) { why = ""; return 0; }
                if (image.HasRawParent) { why = $"{name}: a raw parent cannot be found on LVM"; return -Errno.EINVAL; }
                err = ParentVolume(image, out string? parent, out why);
                if (err != 0) return err;
                child = name;
                expectedUuid = image.Header!.ParentUuid;
                name = parent!;
            }
        }
        why = $"{leaf}: chain deeper than {VhdLimits.MaxChainDepth} (parent loop?)";
        return -Errno.EINVAL;
    }

    /// <summary>The parent's volume from the MACX locator, which on LVM reads <c>./&lt;device-mapper name&gt;</c>.</summary>
    private int ParentVolume(VhdImage image, out string? parent, out string why)
    {
        parent = null;
        why = "";
        foreach (var loc in image.Header!.Locators)
        {
            if (loc.Code != PlatformCode.Macx) continue;
            string value;
            try { value = image.ReadLocator(loc); }
            catch (VhdFormatException e)
            {
                why = $"{image.Path}: unreadable MACX parent locator: {e.Message}";
                return -Errno.EINVAL;
            }
            // The original drops the first two characters blindly; a locator that is not "./<lv>" would then
            // name some other device, so refuse it instead.
            if (!value.StartsWith("./", StringComparison.Ordinal) || value.Length == 2 || value.IndexOf('/', 2) >= 0)
            {
                why = $"{image.Path}: MACX parent locator '{value}' is not ./<logical volume>";
                return -Errno.EINVAL;
            }
            parent = Path.Combine(options.DeviceMapperDirectory, value[2..]);
            return 0;
        }
        why = $"{image.Path}: failed to find parent locator";
        return -Errno.EINVAL;
    }
}
