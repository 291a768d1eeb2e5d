using System.Buffers;
using BlkTapCtrl.Protocol.Nbd;

namespace BlkTapCtrl.Worker.Frontends;

/// <summary>What the connection does after an option was answered.</summary>
public enum NbdNegotiationOutcome
{
    /// <summary>Stay in option haggling.</summary>
    Continue,
    /// <summary>EXPORT_NAME or a successful GO: the transmission phase starts after the replies.</summary>
    Transmission,
    /// <summary>ABORT (after its ACK) or an EXPORT_NAME the server cannot satisfy: close the session.</summary>
    Close,
}

/// <summary>
/// Option haggling of fixed newstyle negotiation for one connection (proto.md): answers each option
/// into <see cref="Output"/> and remembers what was negotiated (structured replies, the
/// <c>base:allocation</c> context, NO_ZEROES). No sockets: the connection feeds it whole options.
/// </summary>
public sealed class NbdNegotiation(NbdExport export)
{
    /// <summary>Option data beyond this is not buffered: the option is refused with ERR_TOO_BIG and skipped.</summary>
    public const uint MaxOptionLength = 64 * 1024;
    public const string BaseAllocation = "base:allocation";
    public const uint BaseAllocationContextId = 1;

    public const NbdHandshakeFlags ServerFlags = NbdHandshakeFlags.FixedNewstyle | NbdHandshakeFlags.NoZeroes;

    public NbdClientFlags ClientFlags { get; private set; }
    public bool StructuredReplies { get; private set; }
    public bool BaseAllocationSelected { get; private set; }

    /// <summary>Reply bytes waiting to be sent.</summary>
    public ArrayBufferWriter<byte> Output { get; } = new(256);

    public void WriteGreeting() => Write(NbdHandshake.GreetingSize, s => NbdHandshake.WriteGreeting(s, ServerFlags));

    /// <summary>Takes the client flags; throws <see cref="NbdProtocolException"/> for flags we did not offer.</summary>
    public void AcceptClientFlags(ReadOnlySpan<byte> flags) => ClientFlags = NbdHandshake.ReadClientFlags(flags, ServerFlags);

    /// <summary>Answers an option whose data was too long to buffer (the caller skips the data).</summary>
    public void RefuseTooBig(NbdOption option, uint length) =>
        Error(option, NbdOptionReplyType.ErrorTooBig, $"option data of {length} bytes exceeds the server's limit of {MaxOptionLength}");

    public NbdNegotiationOutcome Handle(NbdOption option, ReadOnlySpan<byte> data)
    {
        try
        {
            return option switch
            {
                NbdOption.ExportName => ExportName(data),
                NbdOption.Abort => Ack(option, NbdNegotiationOutcome.Close),
                NbdOption.List => List(data),
                NbdOption.StartTls => Error(option, NbdOptionReplyType.ErrorUnsupported, "TLS is not supported by this server"),
                NbdOption.Info or NbdOption.Go => InfoOrGo(option, data),
                NbdOption.StructuredReply => StructuredReply(data),
                NbdOption.ListMetaContext or NbdOption.SetMetaContext => MetaContext(option, data),
                _ => Error(option, NbdOptionReplyType.ErrorUnsupported, $"option {(uint)option} is not supported"),
            };
        }
        catch (NbdInvalidOptionException e)
        {
            return Error(option, NbdOptionReplyType.ErrorInvalid, e.Message);
        }
    }

    private NbdNegotiationOutcome ExportName(ReadOnlySpan<byte> data)
    {
        string name;
        try { name = NbdString.Decode(data, "export name"); }
        catch (NbdInvalidOptionException) { return NbdNegotiationOutcome.Close; }
        // EXPORT_NAME cannot be answered with an error: an unknown export ends the session.
        if (!export.Matches(name))
            return NbdNegotiationOutcome.Close;
        bool noZeroes = ClientFlags.HasFlag(NbdClientFlags.NoZeroes);
        var flags = export.TransmissionFlags(StructuredReplies);
        Write(noZeroes ? NbdHandshake.ExportNameReplySizeNoZeroes : NbdHandshake.ExportNameReplySize,
            s => NbdHandshake.WriteExportNameReply(s, export.SizeBytes, flags, noZeroes));
        return NbdNegotiationOutcome.Transmission;
    }

    private NbdNegotiationOutcome List(ReadOnlySpan<byte> data)
    {
        if (!data.IsEmpty)
            return Error(NbdOption.List, NbdOptionReplyType.ErrorInvalid, $"NBD_OPT_LIST carries no data, got {data.Length} bytes");
        string name = export.Name;
        Write(NbdOptionReplyHeader.Size + 4 + NbdString.MaxBytes * 4, s => NbdOptionReplies.WriteServer(s, NbdOption.List, name));
        return Ack(NbdOption.List, NbdNegotiationOutcome.Continue);
    }

    private NbdNegotiationOutcome InfoOrGo(NbdOption option, ReadOnlySpan<byte> data)
    {
        var request = NbdInfoRequest.Parse(data);
        if (!export.Matches(request.ExportName))
            return Error(option, NbdOptionReplyType.ErrorUnknown, $"no export named '{request.ExportName}'");
        var flags = export.TransmissionFlags(StructuredReplies);
        ulong size = export.SizeBytes;
        Write(NbdOptionReplies.InfoExportSize, s => NbdOptionReplies.WriteInfoExport(s, option, size, flags));
        // Sent whether or not it was asked for (proto.md allows it): clients then keep to 512-byte units.
        Write(NbdOptionReplies.InfoBlockSizeSize, s => NbdOptionReplies.WriteInfoBlockSize(s, option,
            NbdExport.MinimumBlockSize, NbdExport.PreferredBlockSize, NbdExport.MaximumPayload));
        if (request.Requests.Contains(NbdInfoType.Name))
        {
            string name = export.Name;
            Write(NbdOptionReplyHeader.Size + 2 + NbdString.MaxBytes * 4, s => NbdOptionReplies.WriteInfoName(s, option, name));
        }
        return Ack(option, option == NbdOption.Go ? NbdNegotiationOutcome.Transmission : NbdNegotiationOutcome.Continue);
    }

    private NbdNegotiationOutcome StructuredReply(ReadOnlySpan<byte> data)
    {
        if (!data.IsEmpty)
            return Error(NbdOption.StructuredReply, NbdOptionReplyType.ErrorInvalid,
                $"NBD_OPT_STRUCTURED_REPLY carries no data, got {data.Length} bytes");
        if (StructuredReplies)
            return Error(NbdOption.StructuredReply, NbdOptionReplyType.ErrorInvalid, "structured replies are already negotiated");
        StructuredReplies = true;
        return Ack(NbdOption.StructuredReply, NbdNegotiationOutcome.Continue);
    }

    private NbdNegotiationOutcome MetaContext(NbdOption option, ReadOnlySpan<byte> data)
    {
        if (!StructuredReplies)
            return Error(option, NbdOptionReplyType.ErrorInvalid, "meta contexts need structured replies negotiated first");
        var request = NbdMetaContextRequest.Parse(data);
        if (!export.Matches(request.ExportName))
            return Error(option, NbdOptionReplyType.ErrorUnknown, $"no export named '{request.ExportName}'");
        bool set = option == NbdOption.SetMetaContext;
        // The base:allocation context is the only one; a query selects it by its full name, and LIST
        // also by the namespace alone ("base:") or by an empty query list.
        bool selected = false;
        if (!set && request.Queries.Count == 0)
            selected = true;
        foreach (var q in request.Queries)
            if (q == BaseAllocation || (!set && q == "base:"))
                selected = true;
        if (set)
            BaseAllocationSelected = selected;
        if (selected)
            Write(NbdOptionReplyHeader.Size + 4 + BaseAllocation.Length,
                s => NbdOptionReplies.WriteMetaContext(s, option, set ? BaseAllocationContextId : 0, BaseAllocation));
        return Ack(option, NbdNegotiationOutcome.Continue);
    }

    private NbdNegotiationOutcome Ack(NbdOption option, NbdNegotiationOutcome outcome)
    {
        Write(NbdOptionReplyHeader.Size, s => NbdOptionReplies.WriteAck(s, option));
        return outcome;
    }

    private NbdNegotiationOutcome Error(NbdOption option, NbdOptionReplyType type, string message)
    {
        Write(NbdOptionReplyHeader.Size + message.Length * 4, s => NbdOptionReplies.WriteError(s, option, type, message));
        return NbdNegotiationOutcome.Continue;
    }

    private delegate int SpanWriter(Span<byte> destination);
    private delegate void SpanAction(Span<byte> destination);

    private void Write(int maxSize, SpanWriter writer) => Output.Advance(writer(Output.GetSpan(maxSize)));

    private void Write(int size, SpanAction writer)
    {
        writer(Output.GetSpan(size));
        Output.Advance(size);
    }
}
