namespace BlkTapCtrl.Protocol.XenStore;

/// <summary>
/// A frame or payload that breaks the xs_wire rules (oversized length, missing NUL, bad path); the message
/// names the field and the value. A stream that produced one cannot be trusted to stay in sync.
/// </summary>
public sealed class XsProtocolException(string message) : Exception(message);
