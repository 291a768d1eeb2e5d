using BlkTapCtrl.Vhd.Format;
using BlkTapCtrl.Vhd.Image;
using BlkTapCtrl.Worker.IO;

namespace BlkTapCtrl.Worker.Drivers;

/// <summary>
/// Writes BAT sectors (128 entries, 512 bytes) for new blocks. It keeps its own view of the BAT as it
/// may be on disk: a block's entry enters it only when the block's transaction closes (its zeroed gap
/// and bitmap are on disk by then), so a sector written for one block never names another block whose
/// bitmap sector still holds old bytes. One write per sector is in flight; allocations in the same
/// sector meanwhile share the next write (sequential allocation fills one sector per 128 blocks).
/// </summary>
internal sealed class VhdBatWriter
{
    private readonly VhdImageDriver _driver;
    private readonly VhdImage _vhd;
    private readonly uint[] _durable;
    private readonly Dictionary<uint, SectorState> _sectors = new();
    private readonly HashSet<uint> _rewrite = new();

    private sealed class SectorState
    {
        public bool InFlight;
        public List<VhdBlockTransaction> Current = new(4);
        public List<VhdBlockTransaction> Next = new(4);
        public List<VhdBlockTransaction> Spare = new(4);
    }

    public VhdBatWriter(VhdImageDriver driver, VhdImage vhd)
    {
        _driver = driver;
        _vhd = vhd;
        _durable = (uint[])vhd.Bat.Clone();
    }

    /// <summary>An earlier BAT write for the block failed: its next transaction writes the sector again.</summary>
    public bool NeedsRewrite(uint block) => _rewrite.Contains(block);

    public void RewriteLater(uint block) => _rewrite.Add(block);

    /// <summary>Writes the sector holding the transaction's block entry; calls <see cref="VhdImageDriver.OnBatWritten"/> when on disk.</summary>
    public void Write(VhdBlockTransaction txn)
    {
        _rewrite.Remove(txn.Block);
        _durable[txn.Block] = _vhd.Bat[txn.Block];
        uint sector = txn.Block / BlockAllocationTable.EntriesPerSector;
        if (!_sectors.TryGetValue(sector, out var state))
        {
            state = new SectorState();
            _sectors[sector] = state;
        }
        if (state.InFlight)
        {
            state.Next.Add(txn);
            return;
        }
        state.Current.Add(txn);
        Issue(sector, state);
    }

    private void Issue(uint sector, SectorState state)
    {
        state.InFlight = true;
        var io = _driver.RentBatIo(sector);
        BlockAllocationTable.Write(_durable, io.MetadataSpan(512), (int)(sector * BlockAllocationTable.EntriesPerSector));
        io.Set(io.Fd, IoOperation.Write, io.Metadata, 512, (long)_vhd.Header!.TableOffset + sector * 512L, _driver);
        _driver.SubmitBatIo(io);
    }

    public void OnWritten(uint sector, int result)
    {
        var state = _sectors[sector];
        var done = state.Current;
        state.Current = state.Next;
        state.Next = state.Spare;
        state.InFlight = false;
        if (state.Current.Count > 0) Issue(sector, state);
        // Answering may start new allocations in this sector: they go to Next, not to the list walked here.
        foreach (var txn in done) _driver.OnBatWritten(txn, result);
        done.Clear();
        state.Spare = done;
    }
}
