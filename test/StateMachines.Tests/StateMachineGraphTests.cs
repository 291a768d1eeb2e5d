using BlkTapCtrl.StateMachines.Graphs;
using BlkTapCtrl.Testing;

namespace BlkTapCtrl.StateMachines.Tests;

/// <summary>
/// The drawings in docs/state-machines are generated from the machines; this fails when they are stale
/// (and rewrites them, so the next run passes once the new files are committed).
/// </summary>
public class StateMachineGraphTests
{
    public static IEnumerable<TestCaseData> Files() =>
        from g in StateMachineGraphs.All()
        from kind in new[] { "dot", "md" }
        select new TestCaseData(g.Name, kind).SetName($"Graph_{g.Name}_{kind}_is_current");

    [TestCaseSource(nameof(Files))]
    public void Graph_file_is_current(string name, string kind)
    {
        var graph = StateMachineGraphs.All().Single(g => g.Name == name);
        string expected = kind == "dot" ? StateMachineGraphs.Dot(graph) : StateMachineGraphs.MermaidMarkdown(graph);
        var dir = Path.Combine(RepoPaths.Root, "docs", "state-machines");
        var path = Path.Combine(dir, $"{name}.{kind}");
        string? actual = File.Exists(path) ? File.ReadAllText(path) : null;
        if (actual != expected)
        {
            Directory.CreateDirectory(dir);
            File.WriteAllText(path, expected);
            Assert.Fail($"{path} was stale and has been regenerated; review and commit it");
        }
    }

    [Test]
    public void Channel_graph_names_the_guards()
    {
        var dot = StateMachineGraphs.Dot(StateMachineGraphs.All().Single(g => g.Name == "channel"));
        Assert.That(dot, Does.Contain("shared mode and a peer with the same driver"));
        Assert.That(dot, Does.Contain("WaitClose"));
    }
}
