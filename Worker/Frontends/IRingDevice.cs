namespace BlkTapCtrl.Worker.Frontends;

/// <summary>
/// Where a blkif ring lives and how kicks travel (reference §3.6): the kernel blktap device on a Xen
/// host, or a shared-memory file with eventfds everywhere else. The mapping is the ring page followed
/// by 11 data pages per slot (<see cref="Protocol.Blkif.BlkifLayout.MappingSize"/> bytes).
/// </summary>
public unsafe interface IRingDevice : IDisposable
{
    byte* Mapping { get; }

    /// <summary>Readable when the frontend kicked us (registered READ on the loop).</summary>
    int KickFd { get; }

    /// <summary>Consumes the kick that made <see cref="KickFd"/> readable.</summary>
    void AcknowledgeKick();

    /// <summary>Kicks the frontend: responses were published.</summary>
    void NotifyFrontend();

    /// <summary>One line for logs and debug dumps.</summary>
    string Describe();
}
