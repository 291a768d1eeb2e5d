namespace BlkTapCtrl.Worker.Vbd;

/// <summary>
/// What a frontend (an NBD connection, a blkif shared-memory ring, a test) implements to be told about
/// its requests. Every method is called on the event-loop thread, from inside the server iteration.
/// </summary>
public interface IVbdFrontend
{
    /// <summary>
    /// One request is answered: <see cref="VbdRequest.Error"/> is 0 (all data moved; for a read the
    /// segments hold the data) or a negative errno. Write the response into the frontend's own
    /// structures (ring slot, socket buffer) here; the <see cref="VbdRequest"/> goes back to the VBD's
    /// pool as soon as this returns, so do not keep it. Must not call back into the VBD's control
    /// operations (pause/close); submitting new requests from here is allowed.
    /// </summary>
    void OnRequestCompleted(VbdRequest request);

    /// <summary>
    /// The kick: one or more <see cref="OnRequestCompleted"/> calls were made since the last kick;
    /// publish them (ring: rsp_prod + notify; NBD: flush the socket). Called once per server pass at most.
    /// </summary>
    void OnResponsesReady();

    /// <summary>
    /// The VBD closed (CLOSE / FORCE_SHUTDOWN done, every request of this frontend already answered and
    /// kicked). Stop submitting and release the VBD; rented requests are gone.
    /// </summary>
    void OnVbdClosed();

    /// <summary>
    /// The fd the event loop watches for this frontend's requests (a ring's kick fd, an NBD connection's socket),
    /// or −1 for none; only the debug dump reads it (its <c>index: vbd [i]:mask</c> lines, CA-27472).
    /// </summary>
    int PolledFd => -1;
}
