using System.Globalization;
using System.Runtime.InteropServices;
using BlkTapCtrl.XenStore.Server;

// xenstored: our XenStore daemon on a unix socket, for hosts without Xen's own (developer boxes, CI, tests).
// Runs in the foreground, logs to stderr, stops cleanly on SIGTERM/SIGINT (state saved, socket and pid file removed).

const string Usage = """
usage: xenstored [options]
  --socket PATH            unix socket to listen on (default /var/run/xenstored/socket)
  --pid-file PATH          write the daemon's pid here while it runs
  --state-file PATH        keep the tree in PATH across restarts (written atomically)
  --quota-nodes N          nodes one domain may own (default 1000000)
  --quota-node-size N      largest node value in bytes (default 4096)
  --quota-watches N        watches per connection (default 16384)
  --quota-transactions N   open transactions per connection (default 1024)
  --quota-outstanding N    unread replies per connection before its requests wait (default 1024)
  --quota-output-bytes N   unread bytes after which a client is disconnected (default 8388608)
  -h, --help               show this help
""";

var options = new XenStoreServerOptions();
var quotas = new StoreQuotas();
string? pidFile = null;
for (int i = 0; i < args.Length; i++)
{
    string arg = args[i];
    if (arg is "-h" or "--help")
    {
        Console.Out.Write(Usage);
        return 0;
    }
    if (i + 1 >= args.Length)
        return Fail($"option {arg} is unknown or lacks its value");
    string value = args[++i];
    int Number()
    {
        if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n <= 0)
            throw new FormatException($"{arg} needs a positive number, got '{value}'");
        return n;
    }
    try
    {
        switch (arg)
        {
            case "--socket": options = options with { SocketPath = value }; break;
            case "--pid-file": pidFile = value; break;
            case "--state-file": options = options with { StateFile = value }; break;
            case "--quota-nodes": quotas = quotas with { NodesPerDomain = Number() }; break;
            case "--quota-node-size": quotas = quotas with { NodeSize = Number() }; break;
            case "--quota-watches": quotas = quotas with { WatchesPerConnection = Number() }; break;
            case "--quota-transactions": quotas = quotas with { TransactionsPerConnection = Number() }; break;
            case "--quota-outstanding": quotas = quotas with { OutstandingRequestsPerConnection = Number() }; break;
            case "--quota-output-bytes": quotas = quotas with { OutputBytesPerConnection = Number() }; break;
            default: return Fail($"unknown option {arg}");
        }
    }
    catch (FormatException e)
    {
        return Fail(e.Message);
    }
}
options = options with { Quotas = quotas };

static void Log(string message) =>
    Console.Error.WriteLine($"{DateTime.UtcNow:yyyy-MM-ddTHH:mm:ss.fffZ} xenstored[{Environment.ProcessId}]: {message}");

static int Fail(string message)
{
    Console.Error.WriteLine($"xenstored: {message}");
    Console.Error.Write(Usage);
    return 22; // EINVAL
}

XenStoreServer server;
try
{
    server = new XenStoreServer(options, Log);
    server.Start();
}
catch (Exception e) when (e is IOException or InvalidDataException or InvalidOperationException
                              or System.Net.Sockets.SocketException or UnauthorizedAccessException)
{
    Log($"cannot start: {e.Message}");
    return 1;
}

if (pidFile != null)
    File.WriteAllText(pidFile, Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n");

var stopping = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; stopping.TrySetResult("SIGTERM"); });
using var onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => { ctx.Cancel = true; stopping.TrySetResult("SIGINT"); });

Log($"stopping on {await stopping.Task}");
await server.DisposeAsync();
if (pidFile != null)
{
    try { File.Delete(pidFile); } catch (IOException) { }
}
return 0;
