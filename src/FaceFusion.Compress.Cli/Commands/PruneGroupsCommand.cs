using FaceFusion.Compress.Models.Checkpoints;
using FaceFusion.Compress.Pruning;
using Spectre.Console;
using Spectre.Console.Cli;

namespace FaceFusion.Compress.Cli.Commands;

/// <summary>`ffc prune groups MODEL`: the channel groups that must be pruned together.</summary>
internal static class PruneGroupsCommand
{
    public static int List(string model, int resolution, bool all)
    {
        var graph = Checkpoint.ResolveGraph(model, resolution);
        var analysis = new ChannelAnalysis(graph);
        var table = new Table().Title($"channel groups of {graph.Name} ({analysis.Groups.Count(g => g.Prunable)} prunable of {analysis.Groups.Count})")
            .AddColumns("group", "channels", "prunable", "produced by", "members (nodes whose weights follow the group)");
        foreach (var g in analysis.Groups.Where(g => all || g.Prunable).OrderBy(g => g.Id))
            table.AddRow(g.Id.ToString(), g.Size.ToString(), g.Prunable ? "yes" : $"no: {Markup.Escape(g.Reason ?? "")}",
                Markup.Escape(string.Join(", ", g.Producers)), Markup.Escape(string.Join(", ", g.Members)));
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLineInterpolated($"prunable channels: {analysis.Groups.Where(g => g.Prunable).Sum(g => g.Size)}");
        return 0;
    }
}
