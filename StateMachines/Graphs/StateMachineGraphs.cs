using BlkTapCtrl.StateMachines.Channel;
using BlkTapCtrl.StateMachines.Shutdown;
using BlkTapCtrl.StateMachines.Vbd;
using Stateless.Graph;
using Stateless.Reflection;

namespace BlkTapCtrl.StateMachines.Graphs;

/// <summary>
/// DOT and Mermaid drawings generated from the configured machines themselves, so the pictures in
/// <c>docs/state-machines/</c> can never drift from the code (a test compares them).
/// </summary>
public static class StateMachineGraphs
{
    public sealed record Graph(string Name, string Title, StateMachineInfo Info);

    public static IReadOnlyList<Graph> All()
    {
        static void Ignore<TS, TT>(TS s, TT t) { }
        return
        [
            new("channel", "Channel state machine (reference §1.7, §1.9)", new ChannelStateMachine(Ignore).GetInfo()),
            new("vbd", "VBD state machine (reference §1.7, §1.9)", new VbdStateMachine(Ignore).GetInfo()),
            new("shutdown", "Shutdown state machine (reference §1.7)", new ShutdownStateMachine(Ignore).GetInfo()),
        ];
    }

    public static string Dot(Graph graph) => UmlDotGraph.Format(graph.Info);

    /// <summary>A markdown page with the Mermaid diagram, as GitHub renders it.</summary>
    public static string MermaidMarkdown(Graph graph) =>
        $"# {graph.Title}\n\nGenerated from `StateMachines/` by `StateMachineGraphTests`; do not edit.\n\n```mermaid\n"
        + MermaidGraph.Format(graph.Info).TrimEnd() + "\n```\n";
}
