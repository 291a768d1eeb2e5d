namespace BlkTapCtrl.Protocol.Control;

/// <summary>A control record that cannot be decoded or encoded; the message says which field and value.</summary>
public sealed class ControlProtocolException(string message) : Exception(message);
