using System.Globalization;
using BlkTapCtrl.XenStore.Client;
using Microsoft.Extensions.Logging;

namespace BlkTapCtrl.Controller.Startup;

/// <summary>
/// dom0's domain id (reference §1.1): the <c>/local/domain/*</c> entry whose <c>name</c> is <c>Domain-0</c>,
/// read from its <c>domid</c>. When there is none yet, watch <c>/local/domain</c> (token <c>domid-watch</c>)
/// and look again on every change.
/// </summary>
public static class Dom0Discovery
{
    public const string Dom0Name = "Domain-0";

    public static async Task<int> FindAsync(XenStoreClient xs, ILogger log, CancellationToken cancel)
    {
        if (await ScanAsync(xs, cancel).ConfigureAwait(false) is { } found)
            return found;
        log.LogInformation("no {Name} under /local/domain yet; waiting for it", Dom0Name);
        await using var watch = await xs.WatchAsync("/local/domain", "domid-watch", cancel).ConfigureAwait(false);
        await foreach (var _ in watch.ReadAllAsync(cancel).ConfigureAwait(false))
        {
            if (await ScanAsync(xs, cancel).ConfigureAwait(false) is { } id)
                return id;
        }
        throw new OperationCanceledException();
    }

    private static async Task<int?> ScanAsync(XenStoreClient xs, CancellationToken cancel)
    {
        IReadOnlyList<string> domains;
        try
        {
            domains = await xs.DirectoryAsync("/local/domain", cancel).ConfigureAwait(false);
        }
        catch (XenStoreException e) when (e.Errno == 2)
        {
            return null;
        }
        foreach (var d in domains)
        {
            if (await xs.TryReadAsync($"/local/domain/{d}/name", cancel).ConfigureAwait(false) != Dom0Name)
                continue;
            var domid = await xs.TryReadAsync($"/local/domain/{d}/domid", cancel).ConfigureAwait(false);
            if (int.TryParse(domid?.TrimEnd('\0'), NumberStyles.None, CultureInfo.InvariantCulture, out int id))
                return id;
        }
        return null;
    }
}
