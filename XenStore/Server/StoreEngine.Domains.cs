using System.Globalization;
using System.Text;
using BlkTapCtrl.Protocol.XenStore;

namespace BlkTapCtrl.XenStore.Server;

/// <summary>Domain management requests (only dom0 may use them) and CONTROL.</summary>
public sealed partial class StoreEngine
{
    private Watch? _pendingInitial;

    private int Introduce(ClientSession s, ReadOnlySpan<byte> payload)
    {
        RequirePrivileged(s, "INTRODUCE");
        var args = Arguments(payload, 3, "INTRODUCE needs domid, mfn and event channel");
        uint domId = DomainArgument(args[0], allowDom0: false);
        if (!long.TryParse(args[1], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _)
            || !uint.TryParse(args[2], NumberStyles.None, CultureInfo.InvariantCulture, out _))
            throw new StoreError(XsError.EINVAL, $"INTRODUCE mfn '{args[1]}' or event channel '{args[2]}' is not a number");
        // There is no hypervisor ring to map here: the domain is recorded so watches and queries see it.
        if (_introduced.Add(domId)) _edit.Events.Add((XsPath.IntroduceDomain, false));
        return Ok();
    }

    private int Release(ClientSession s, ReadOnlySpan<byte> payload)
    {
        RequirePrivileged(s, "RELEASE");
        uint domId = DomainArgument(Arguments(payload, 1, "RELEASE needs a domid")[0], allowDom0: false);
        if (!_introduced.Remove(domId))
            throw new StoreError(XsError.ENOENT, $"domain {domId} was not introduced");
        _edit.Events.Add((XsPath.ReleaseDomain, false));
        return Ok();
    }

    private int Resume(ClientSession s, ReadOnlySpan<byte> payload)
    {
        RequirePrivileged(s, "RESUME");
        uint domId = DomainArgument(Arguments(payload, 1, "RESUME needs a domid")[0], allowDom0: false);
        if (!_introduced.Contains(domId))
            throw new StoreError(XsError.ENOENT, $"domain {domId} was not introduced");
        return Ok();
    }

    private int SetTarget(ClientSession s, ReadOnlySpan<byte> payload)
    {
        RequirePrivileged(s, "SET_TARGET");
        var args = Arguments(payload, 2, "SET_TARGET needs domid and target domid");
        uint domId = DomainArgument(args[0], allowDom0: false);
        DomainArgument(args[1], allowDom0: false);
        if (!_introduced.Contains(domId))
            throw new StoreError(XsError.ENOENT, $"domain {domId} was not introduced");
        return Ok();
    }

    private int IsIntroduced(ReadOnlySpan<byte> payload)
    {
        uint domId = DomainArgument(Arguments(payload, 1, "IS_DOMAIN_INTRODUCED needs a domid")[0], allowDom0: true);
        _reply[0] = domId == 0 || _introduced.Contains(domId) ? (byte)'T' : (byte)'F';
        _reply[1] = 0;
        return 2;
    }

    private int DomainPath(ReadOnlySpan<byte> payload)
    {
        uint domId = DomainArgument(Arguments(payload, 1, "GET_DOMAIN_PATH needs a domid")[0], allowDom0: true);
        int n = Encoding.ASCII.GetBytes(XsPath.DomainHome(domId), _reply);
        _reply[n++] = 0;
        return n;
    }

    private int Control(ClientSession s, ReadOnlySpan<byte> payload)
    {
        RequirePrivileged(s, "CONTROL");
        var args = XsPayload.Strings(payload, allowUnterminatedLast: true);
        var command = args.Count > 0 ? args[0] : "";
        switch (command)
        {
            case "print":
                _log($"client {s.Id}: {(args.Count > 1 ? args[1] : "")}");
                return Ok();
            case "check":
                return Ok();
            case "help":
            {
                int n = Encoding.ASCII.GetBytes("check\nhelp\nprint\n", _reply);
                _reply[n++] = 0;
                return n;
            }
            default:
                throw new StoreError(XsError.EINVAL, $"CONTROL command '{command}' is not supported");
        }
    }

    private static void RequirePrivileged(ClientSession s, string request)
    {
        if (s.DomId != 0)
            throw new StoreError(XsError.EACCES, $"{request} is for dom0 only; domain {s.DomId} asked");
    }

    private static uint DomainArgument(string text, bool allowDom0)
    {
        if (!uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out uint domId) || domId > 0x7fef
            || (!allowDom0 && domId == 0))
            throw new StoreError(XsError.EINVAL, $"'{text}' is not a valid domid here");
        return domId;
    }
}
