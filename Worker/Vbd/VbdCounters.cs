using System.Globalization;

namespace BlkTapCtrl.Worker.Vbd;

/// <summary>Per-VBD statistics shown in debug dumps and the close log (CA-27472).</summary>
public sealed class VbdCounters
{
    public long Received;
    public long Returned;
    public long Errors;
    public long Retries;
    /// <summary>Frontend batches (ring events) taken in.</summary>
    public long KicksIn;
    /// <summary>Kicks that published responses.</summary>
    public long KicksOut;
    /// <summary>Responses published by those kicks.</summary>
    public long Kicked;

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"received 0x{Received:x} returned 0x{Returned:x} errors 0x{Errors:x} retries 0x{Retries:x} kicked 0x{Kicked:x} kicks in: 0x{KicksIn:x}, out: 0x{KicksOut:x}");
}
