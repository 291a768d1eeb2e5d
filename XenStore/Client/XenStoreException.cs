using BlkTapCtrl.Protocol.XenStore;

namespace BlkTapCtrl.XenStore.Client;

/// <summary>The daemon answered a request with an ERROR reply (e.g. ENOENT for a missing node).</summary>
public class XenStoreException : Exception
{
    public XenStoreException(XsError error, XsMessageType operation, string? path)
        : base($"xenstore {XsMessageTypes.Name(operation)}{(path == null ? "" : " " + path)} failed: {XsErrors.Name(error)}")
    {
        Error = error;
        Operation = operation;
        Path = path;
    }

    /// <summary>The errno the daemon named.</summary>
    public XsError Error { get; }

    /// <summary>The errno number as on Linux (e.g. 2 for ENOENT).</summary>
    public int Errno => (int)Error;

    public XsMessageType Operation { get; }

    /// <summary>The path (or first argument) of the failed request, when it had one.</summary>
    public string? Path { get; }
}

/// <summary>
/// The connection to the daemon broke (or was closed) while the call was pending or before it was sent.
/// Every pending call of the connection fails with this; <see cref="XenStoreClient.ReconnectAsync"/> opens
/// a new connection.
/// </summary>
public sealed class XenStoreConnectionLostException(string message, Exception? inner = null) : Exception(message, inner);
