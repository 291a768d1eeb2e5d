using BlkTapCtrl.Worker.Vbd;
using BlkTapCtrl.Protocol.Nbd;

namespace BlkTapCtrl.Worker.Frontends;

/// <summary>
/// What one NBD server exports: a VBD under a name, its size, whether writes are refused, and the
/// transmission flags every connection is told.
/// </summary>
public sealed class NbdExport(VirtualBlockDevice vbd, string name = "", bool readOnly = false)
{
    /// <summary>Smallest request granularity: the VBD works in 512-byte sectors.</summary>
    public const uint MinimumBlockSize = 512;
    public const uint PreferredBlockSize = 4096;
    /// <summary>Largest READ/WRITE payload accepted (proto.md's customary 32 MiB).</summary>
    public const uint MaximumPayload = 32 << 20;

    public VirtualBlockDevice Vbd { get; } = vbd;

    /// <summary>The export's name; the empty default name is accepted too.</summary>
    public string Name { get; } = name;

    /// <summary>Read-only by request (<c>--readonly</c>) or because the image was opened read-only.</summary>
    public bool ReadOnly => readOnly || Vbd.ReadOnly;

    public ulong SizeBytes => Vbd.Sectors * 512;

    public bool Matches(string requested) => requested.Length == 0 || requested == Name;

    /// <summary>
    /// Transmission flags. CAN_MULTI_CONN is always safe here: every connection of this server goes to
    /// the same VBD and image fds in this one process, so a FLUSH or FUA on any connection covers the
    /// writes every connection has seen answered. DF only with structured replies (proto.md: MUST leave
    /// it clear otherwise); a read is always answered in one content chunk anyway.
    /// </summary>
    public NbdTransmissionFlags TransmissionFlags(bool structuredReplies)
    {
        var flags = NbdTransmissionFlags.HasFlags | NbdTransmissionFlags.SendFlush | NbdTransmissionFlags.SendFua
            | NbdTransmissionFlags.SendCache | NbdTransmissionFlags.CanMultiConn;
        if (ReadOnly)
            flags |= NbdTransmissionFlags.ReadOnly;
        else
            flags |= NbdTransmissionFlags.SendTrim | NbdTransmissionFlags.SendWriteZeroes;
        if (structuredReplies)
            flags |= NbdTransmissionFlags.SendDf;
        return flags;
    }
}
