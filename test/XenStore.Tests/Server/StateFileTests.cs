using BlkTapCtrl.Protocol.XenStore;
using BlkTapCtrl.Testing;
using BlkTapCtrl.XenStore.Server;

namespace BlkTapCtrl.XenStore.Tests.Server;

public class StateFileTests
{
    [Test]
    public void The_tree_survives_a_save_and_load_with_values_and_permissions()
    {
        using var dir = new TempDir("xsstate");
        var engine = new StoreEngine();
        var c = new EngineClient(engine);
        c.Call(XsMessageType.Write, 0, "/a/b\0bin\0ary"u8.ToArray());
        c.Write("/a/c", "text");
        c.Call(XsMessageType.SetPerms, 0, "/a/c", "r3", "b7");
        StateFile.Save(engine.Root, dir["state"]);
        Assert.That(File.Exists(dir["state.tmp"]), Is.False, "the temporary file was renamed into place");

        var loaded = new StoreEngine(StateFile.Load(dir["state"]), null, null);
        var d = new EngineClient(loaded);
        d.Call(XsMessageType.Read, 0, "/a/b");
        Assert.That(d.Received.Last().Payload, Is.EqualTo("bin\0ary"u8.ToArray()));
        Assert.That(d.Call(XsMessageType.GetPerms, 0, "/a/c"), Is.EqualTo("r3|b7"));
        Assert.That(d.Read("/local/domain/0/name"), Is.EqualTo("Domain-0"));
    }

    [Test]
    public void A_truncated_or_foreign_state_file_is_refused_with_the_reason()
    {
        using var dir = new TempDir("xsstate");
        var engine = new StoreEngine();
        StateFile.Save(engine.Root, dir["state"]);
        var bytes = File.ReadAllBytes(dir["state"]);
        File.WriteAllBytes(dir["cut"], bytes[..^3]);
        var e = Assert.Throws<InvalidDataException>(() => StateFile.Load(dir["cut"]));
        Assert.That(e!.Message, Does.Contain("truncated at offset"));
        File.WriteAllText(dir["junk"], "hello world, not a state");
        Assert.That(Assert.Throws<InvalidDataException>(() => StateFile.Load(dir["junk"]))!.Message, Does.Contain("magic"));
    }
}
