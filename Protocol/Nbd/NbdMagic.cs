namespace BlkTapCtrl.Protocol.Nbd;

/// <summary>The magic numbers of the NBD wire protocol (NBD proto.md), all sent big-endian.</summary>
public static class NbdMagic
{
    /// <summary>"NBDMAGIC": first 8 bytes the server sends.</summary>
    public const ulong InitPassword = 0x4E42444D41474943;
    /// <summary>"IHAVEOPT": second greeting word, and the prefix of every client option.</summary>
    public const ulong Option = 0x49484156454F5054;
    /// <summary>Prefix of every option reply in fixed newstyle negotiation.</summary>
    public const ulong OptionReply = 0x0003E889045565A9;
    public const uint Request = 0x25609513;
    public const uint SimpleReply = 0x67446698;
    public const uint StructuredReply = 0x668E33EF;
}
