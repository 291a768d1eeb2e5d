using System.Text;
using BlkTapCtrl.Protocol.XenStore;
using BlkTapCtrl.XenStore.Server;

namespace BlkTapCtrl.XenStore.Tests.Server;

public class StoreEngineTests
{
    private static (StoreEngine Engine, EngineClient Client) Fresh(StoreQuotas? quotas = null)
    {
        var engine = new StoreEngine(quotas);
        return (engine, new EngineClient(engine));
    }

    [Test]
    public void Dom0_identity_exists_at_start()
    {
        var (_, c) = Fresh();
        Assert.That(c.Read("/local/domain/0/domid"), Is.EqualTo("0"));
        Assert.That(c.Read("/local/domain/0/name"), Is.EqualTo("Domain-0"));
        Assert.That(c.Dir("/local/domain"), Is.EqualTo("0"));
    }

    [Test]
    public void Write_creates_parents_and_relative_paths_resolve_under_the_domain_home()
    {
        var (_, c) = Fresh();
        Assert.That(c.Write("/a/b/c", "v"), Is.EqualTo("OK"));
        Assert.That(c.Read("/a/b"), Is.EqualTo(""));
        Assert.That(c.Read("/a/b/c"), Is.EqualTo("v"));
        Assert.That(c.Write("rel/x", "1"), Is.EqualTo("OK"));
        Assert.That(c.Read("/local/domain/0/rel/x"), Is.EqualTo("1"));
        Assert.That(c.Read("rel/x"), Is.EqualTo("1"));
    }

    [Test]
    public void Values_are_binary_and_stored_as_sent()
    {
        var (_, c) = Fresh();
        Assert.That(c.Call(XsMessageType.Write, 0, "/n\0ab\0c\0"u8.ToArray()), Is.EqualTo("OK"));
        c.Call(XsMessageType.Read, 0, "/n\0"u8.ToArray());
        Assert.That(c.Received.Last().Payload, Is.EqualTo("ab\0c\0"u8.ToArray()), "trailing NUL kept (controller writes sectors with one)");
    }

    [Test]
    public void Rm_of_a_missing_leaf_succeeds_only_when_the_parent_exists()
    {
        var (_, c) = Fresh();
        c.Write("/a/b/c", "v");
        Assert.That(c.Rm("/a/b/missing"), Is.EqualTo("OK"));
        Assert.That(c.Rm("/a/nope/missing"), Is.EqualTo("ERROR:ENOENT"));
        Assert.That(c.Rm("/a"), Is.EqualTo("OK"));
        Assert.That(c.Read("/a/b/c"), Is.EqualTo("ERROR:ENOENT"));
        Assert.That(c.Rm("/"), Is.EqualTo("ERROR:EINVAL"));
    }

    [Test]
    public void Mkdir_keeps_an_existing_value()
    {
        var (_, c) = Fresh();
        c.Write("/a", "keep");
        Assert.That(c.Mkdir("/a"), Is.EqualTo("OK"));
        Assert.That(c.Read("/a"), Is.EqualTo("keep"));
        Assert.That(c.Mkdir("/x/y"), Is.EqualTo("OK"));
        Assert.That(c.Read("/x/y"), Is.EqualTo(""));
    }

    [Test]
    public void Watches_fire_once_at_registration_and_for_changes_at_or_below_the_path()
    {
        var (engine, c) = Fresh();
        var other = new EngineClient(engine);
        c.Write("/vbd/1", "x");
        Assert.That(other.Watch("/vbd", "tok"), Is.EqualTo("OK"));
        Assert.That(other.Events, Is.EqualTo(new[] { ("/vbd", "tok") }), "one event at registration");
        Assert.That(other.Received.First().Header.Type, Is.EqualTo(XsMessageType.Watch), "the reply comes before the initial event");
        other.ClearEvents();

        c.Write("/vbd/1/state", "4");      // descendant
        c.Write("/vbdx", "no");            // sibling sharing a prefix: no event
        c.Mkdir("/vbd/2");
        c.Call(XsMessageType.SetPerms, 0, "/vbd/2", "b0");
        c.Rm("/vbd/1");
        Assert.That(other.Events, Is.EqualTo(new[]
        {
            ("/vbd/1/state", "tok"), ("/vbd/2", "tok"), ("/vbd/2", "tok"), ("/vbd/1", "tok"),
        }));
        var header = other.Received.Last().Header;
        Assert.That((header.RequestId, header.TransactionId), Is.EqualTo((0u, 0u)));
    }

    [Test]
    public void Removing_an_ancestor_fires_watches_below_it_with_their_own_path()
    {
        var (_, c) = Fresh();
        c.Write("/be/tap/1/51712/pause", "");
        c.Watch("/be/tap/1/51712/pause", "pause");
        c.ClearEvents();
        c.Rm("/be/tap");
        Assert.That(c.Events, Is.EqualTo(new[] { ("/be/tap/1/51712/pause", "pause") }));
    }

    [Test]
    public void A_relative_watch_reports_relative_paths()
    {
        var (_, c) = Fresh();
        c.Watch("backend", "b");
        c.Write("/local/domain/0/backend/tap/1", "");
        Assert.That(c.Events, Is.EqualTo(new[] { ("backend", "b"), ("backend/tap/1", "b") }));
    }

    [Test]
    public void Unwatch_stops_events_and_duplicate_or_unknown_watches_are_errors()
    {
        var (_, c) = Fresh();
        c.Watch("/a", "t");
        Assert.That(c.Watch("/a", "t"), Is.EqualTo("ERROR:EEXIST"));
        Assert.That(c.Call(XsMessageType.Unwatch, 0, "/a", "t"), Is.EqualTo("OK"));
        Assert.That(c.Call(XsMessageType.Unwatch, 0, "/a", "t"), Is.EqualTo("ERROR:ENOENT"));
        c.ClearEvents();
        c.Write("/a", "1");
        Assert.That(c.Events, Is.Empty);
    }

    [Test]
    public void Introduce_and_release_fire_the_special_watches()
    {
        var (_, c) = Fresh();
        c.Watch(XsPath.IntroduceDomain, "in");
        c.Watch(XsPath.ReleaseDomain, "out");
        c.ClearEvents();
        Assert.That(c.Call(XsMessageType.IsDomainIntroduced, 0, "7"), Is.EqualTo("F"));
        Assert.That(c.Call(XsMessageType.Introduce, 0, "7", "1234", "5"), Is.EqualTo("OK"));
        Assert.That(c.Call(XsMessageType.IsDomainIntroduced, 0, "7"), Is.EqualTo("T"));
        Assert.That(c.Call(XsMessageType.Release, 0, "7"), Is.EqualTo("OK"));
        Assert.That(c.Call(XsMessageType.Release, 0, "7"), Is.EqualTo("ERROR:ENOENT"));
        Assert.That(c.Events, Is.EqualTo(new[] { ("@introduceDomain", "in"), ("@releaseDomain", "out") }));
        Assert.That(c.Call(XsMessageType.GetDomainPath, 0, "7"), Is.EqualTo("/local/domain/7"));
    }

    [Test]
    public void A_transaction_sees_its_snapshot_and_fires_events_only_at_commit()
    {
        var (engine, c) = Fresh();
        var watcher = new EngineClient(engine);
        c.Write("/k", "a");
        watcher.Watch("/k", "w");
        watcher.ClearEvents();
        uint tx = c.Start();
        Assert.That(c.Write("/k", "b", tx), Is.EqualTo("OK"));
        Assert.That(c.Read("/k", tx), Is.EqualTo("b"));
        Assert.That(c.Read("/k"), Is.EqualTo("a"), "outside the transaction nothing changed yet");
        Assert.That(watcher.Events, Is.Empty);
        Assert.That(c.End(tx, commit: true), Is.EqualTo("OK"));
        Assert.That(c.Read("/k"), Is.EqualTo("b"));
        Assert.That(watcher.Events, Is.EqualTo(new[] { ("/k", "w") }));
    }

    [Test]
    public void A_commit_fails_with_EAGAIN_when_a_node_it_read_changed_outside()
    {
        var (engine, c) = Fresh();
        var other = new EngineClient(engine);
        c.Write("/k", "a");
        uint tx = c.Start();
        c.Read("/k", tx);
        other.Write("/k", "outside");
        c.Write("/k", "mine", tx);
        Assert.That(c.End(tx, commit: true), Is.EqualTo("ERROR:EAGAIN"));
        Assert.That(c.Read("/k"), Is.EqualTo("outside"), "nothing of the failed transaction applied");
        Assert.That(c.End(tx, commit: true), Is.EqualTo("ERROR:ENOENT"), "the transaction is gone after END");
    }

    [Test]
    public void Unrelated_outside_changes_do_not_fail_a_commit()
    {
        var (engine, c) = Fresh();
        var other = new EngineClient(engine);
        c.Write("/a/k", "1");
        uint tx = c.Start();
        c.Read("/a/k", tx);
        c.Write("/a/k", "2", tx);
        other.Write("/a/unrelated/deep", "x");
        other.Write("/b", "y");
        Assert.That(c.End(tx, commit: true), Is.EqualTo("OK"));
        Assert.That(c.Read("/a/k"), Is.EqualTo("2"));
        Assert.That(c.Read("/a/unrelated/deep"), Is.EqualTo("x"));
    }

    [Test]
    public void A_directory_listing_in_a_transaction_conflicts_with_a_new_child()
    {
        var (engine, c) = Fresh();
        var other = new EngineClient(engine);
        c.Mkdir("/d");
        uint tx = c.Start();
        c.Dir("/d", tx);
        c.Write("/d/mine", "", tx);
        other.Write("/d/theirs", "");
        Assert.That(c.End(tx, commit: true), Is.EqualTo("ERROR:EAGAIN"));
    }

    [Test]
    public void Abort_discards_and_bad_transaction_ids_are_refused()
    {
        var (_, c) = Fresh();
        uint tx = c.Start();
        c.Write("/gone", "x", tx);
        Assert.That(c.End(tx, commit: false), Is.EqualTo("OK"));
        Assert.That(c.Read("/gone"), Is.EqualTo("ERROR:ENOENT"));
        Assert.That(c.Read("/local", 999), Is.EqualTo("ERROR:ENOENT"));
        Assert.That(c.Call(XsMessageType.TransactionStart, 5, ""), Is.EqualTo("ERROR:EBUSY"));
        uint tx2 = c.Start();
        Assert.That(c.Call(XsMessageType.TransactionEnd, tx2, "X"), Is.EqualTo("ERROR:EINVAL"));
    }

    [Test]
    public void Transactions_are_per_connection()
    {
        var (engine, c) = Fresh();
        var other = new EngineClient(engine);
        uint tx = c.Start();
        Assert.That(other.Read("/local", tx), Is.EqualTo("ERROR:ENOENT"));
    }

    [Test]
    public void Permissions_are_kept_per_node_and_enforced_for_unprivileged_domains()
    {
        var (engine, dom0) = Fresh();
        var domU = new EngineClient(engine, domId: 5);
        dom0.Write("/local/domain/5/device/vbd", "x");
        Assert.That(dom0.Call(XsMessageType.GetPerms, 0, "/local/domain/5/device/vbd"), Is.EqualTo("n0"));
        Assert.That(domU.Read("/local/domain/5/device/vbd"), Is.EqualTo("ERROR:EACCES"));
        Assert.That(dom0.Call(XsMessageType.SetPerms, 0, "/local/domain/5/device/vbd", "n0", "r5"), Is.EqualTo("OK"));
        Assert.That(domU.Read("/local/domain/5/device/vbd"), Is.EqualTo("x"));
        Assert.That(domU.Write("/local/domain/5/device/vbd", "y"), Is.EqualTo("ERROR:EACCES"));
        dom0.Call(XsMessageType.SetPerms, 0, "/local/domain/5", "b5");
        Assert.That(domU.Write("/local/domain/5/mine", "y"), Is.EqualTo("OK"), "owner of the parent may create");
        Assert.That(dom0.Call(XsMessageType.GetPerms, 0, "/local/domain/5/mine"), Is.EqualTo("b5"));
        Assert.That(domU.Call(XsMessageType.Introduce, 0, "9", "1", "1"), Is.EqualTo("ERROR:EACCES"));
        Assert.That(domU.Call(XsMessageType.SetPerms, 0, "/local/domain/5/device/vbd", "b5"), Is.EqualTo("ERROR:EACCES"), "only the owner may change permissions");
        Assert.That(dom0.Call(XsMessageType.SetPerms, 0, "/local", "x5"), Is.EqualTo("ERROR:EINVAL"));
    }

    [Test]
    public void Quotas_refuse_requests_and_leave_the_tree_unchanged()
    {
        var quotas = new StoreQuotas { NodesPerDomain = 12, NodeSize = 8, WatchesPerConnection = 2, TransactionsPerConnection = 1 };
        var (_, c) = Fresh(quotas);
        // 6 nodes exist at start: /, /local, /local/domain, /local/domain/0 and its domid and name.
        Assert.That(c.Write("/q/1", "x"), Is.EqualTo("OK"));
        Assert.That(c.Write("/q/2/3/4/5/6/7", "x"), Is.EqualTo("ERROR:ENOSPC"));
        Assert.That(c.Read("/q/2"), Is.EqualTo("ERROR:ENOENT"), "no parent of the refused write was created");
        Assert.That(c.Write("/q/big", "123456789"), Is.EqualTo("ERROR:ENOSPC"));
        Assert.That(c.Watch("/a", "1"), Is.EqualTo("OK"));
        Assert.That(c.Watch("/a", "2"), Is.EqualTo("OK"));
        Assert.That(c.Watch("/a", "3"), Is.EqualTo("ERROR:ENOSPC"));
        c.Start();
        Assert.That(c.Call(XsMessageType.TransactionStart, 0, ""), Is.EqualTo("ERROR:ENOSPC"));
        Assert.That(c.Rm("/q"), Is.EqualTo("OK"));
        Assert.That(c.Write("/q/2/3/4", "x"), Is.EqualTo("OK"), "removed nodes give their quota back");
    }

    [Test]
    public void Long_child_lists_need_directory_part()
    {
        var (_, c) = Fresh();
        var names = Enumerable.Range(0, 600).Select(i => $"child-{i:D4}").ToList();
        foreach (var n in names) c.Write("/big/" + n, "");
        Assert.That(c.Dir("/big"), Is.EqualTo("ERROR:E2BIG"));
        var collected = new List<string>();
        string? generation = null;
        while (true)
        {
            int offset = collected.Sum(n => n.Length + 1);
            c.Call(XsMessageType.DirectoryPart, 0, "/big", offset.ToString(System.Globalization.CultureInfo.InvariantCulture));
            var (gen, children, complete) = XsPayload.DirectoryPart(c.Received.Last().Payload);
            generation ??= gen;
            Assert.That(gen, Is.EqualTo(generation));
            collected.AddRange(children);
            if (complete) break;
            Assert.That(children, Is.Not.Empty);
        }
        Assert.That(collected, Is.EqualTo(names));
    }

    [Test]
    public void Malformed_requests_get_EINVAL_and_change_nothing()
    {
        var (_, c) = Fresh();
        Assert.That(c.Call(XsMessageType.Write, 0, "/no-nul-separator"u8.ToArray()), Is.EqualTo("ERROR:EINVAL"));
        Assert.That(c.Write("/bad//path", "x"), Is.EqualTo("ERROR:EINVAL"));
        Assert.That(c.Write("/bad path", "x"), Is.EqualTo("ERROR:EINVAL"));
        Assert.That(c.Call(XsMessageType.WatchEvent, 0, "/x", "t"), Is.EqualTo("ERROR:EINVAL"));
        Assert.That(c.Call((XsMessageType)20, 0, "/x"), Is.EqualTo("ERROR:EINVAL"));
        Assert.That(c.Call((XsMessageType)999, 0, "/x"), Is.EqualTo("ERROR:EINVAL"));
        Assert.That(c.Call(XsMessageType.Watch, 0, "/only-path"), Is.EqualTo("ERROR:EINVAL"));
        Assert.That(c.Dir("/"), Is.EqualTo("local"));
    }

    [Test]
    public void A_watcher_that_does_not_read_is_dropped_and_the_writer_is_unaffected()
    {
        var (engine, writer) = Fresh();
        var stalled = new EngineClient(engine, maxQueued: 50);
        stalled.Watch("/hot", "t");
        for (int i = 0; i < 100; i++) Assert.That(writer.Write("/hot/" + i, "x"), Is.EqualTo("OK"));
        Assert.That(stalled.DroppedBecause, Does.Contain("watch events are not being read"));
        Assert.That(stalled.Received, Has.Count.EqualTo(50), "nothing more queued once dropped");
    }

    [Test]
    public void Control_print_logs_and_unknown_commands_are_refused()
    {
        var lines = new List<string>();
        var engine = new StoreEngine(null, lines.Add);
        var c = new EngineClient(engine);
        Assert.That(c.Call(XsMessageType.Control, 0, "print", "hello"), Is.EqualTo("OK"));
        Assert.That(lines.Single(), Does.EndWith("hello"));
        Assert.That(c.Call(XsMessageType.Control, 0, "nonsense"), Is.EqualTo("ERROR:EINVAL"));
    }
}
