namespace BlkTapCtrl.Protocol.Nbd;

/// <summary>
/// The peer broke the NBD protocol (bad magic, impossible length, unknown flag where the spec says to
/// disconnect). The message names the field and the value; the connection must be dropped.
/// </summary>
public sealed class NbdProtocolException(string message) : Exception(message);
