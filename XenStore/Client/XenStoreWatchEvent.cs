namespace BlkTapCtrl.XenStore.Client;

/// <summary>
/// One WATCH_EVENT: <see cref="Path"/> is the node that changed (or the watched path itself for the event at
/// registration and when an ancestor was removed); <see cref="Token"/> is the watch's token.
/// </summary>
public readonly record struct XenStoreWatchEvent(string Path, string Token);
