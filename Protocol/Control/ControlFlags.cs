namespace BlkTapCtrl.Protocol.Control;

/// <summary>Open flags carried in the params payload (supervisor's view, reference §2).</summary>
[Flags]
public enum ControlOpenFlags : byte
{
    None = 0,
    Shared = 0x01,
    ReadOnly = 0x02,
    AddCache = 0x04,
    VhdIndex = 0x08,
    LogDirty = 0x10,
}

/// <summary>Storage kind of the image (params payload byte 1).</summary>
public enum StorageType : byte
{
    Unknown = 0,
    Nfs = 1,
    Ext = 2,
    Lvm = 3,
}

/// <summary>Driver ids as the supervisor's handle table numbers them (reference §1.4).</summary>
public enum DriverType : ushort
{
    Aio = 0,
    Vhd = 4,
    Ram = 5,
    BlockCache = 7,
    VhdIndex = 8,
    Log = 9,
}
