using System.ComponentModel;
using FaceFusion.Compress.Models.Checkpoints;
using FaceFusion.Compress.Pruning;
using Spectre.Console;
using Spectre.Console.Cli;

namespace FaceFusion.Compress.Cli.Commands;

internal sealed class PruneGroupsCommand : Command<PruneGroupsCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandArgument(0, "<MODEL>")]
        [Description("A checkpoint folder, a graph.json, or a built-in architecture (teacher, student).")]
        public string Model { get; init; } = "";

        [CommandOption("-r|--resolution <R>")]
        [Description("Resolution for built-in architectures. Default 128.")]
        public int Resolution { get; init; } = 128;

        [CommandOption("--all")]
        [Description("Also list groups that cannot be pruned, with the reason.")]
        public bool All { get; init; }
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var graph = Checkpoint.ResolveGraph(settings.Model, settings.Resolution);
        var analysis = new ChannelAnalysis(graph);
        var table = new Table().Title($"channel groups of {graph.Name} ({analysis.Groups.Count(g => g.Prunable)} prunable of {analysis.Groups.Count})")
            .AddColumns("group", "channels", "prunable", "produced by", "members (nodes whose weights follow the group)");
        foreach (var g in analysis.Groups.Where(g => settings.All || g.Prunable).OrderBy(g => g.Id))
            table.AddRow(g.Id.ToString(), g.Size.ToString(), g.Prunable ? "yes" : $"no: {Markup.Escape(g.Reason ?? "")}",
                Markup.Escape(string.Join(", ", g.Producers)), Markup.Escape(string.Join(", ", g.Members)));
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLineInterpolated($"prunable channels: {analysis.Groups.Where(g => g.Prunable).Sum(g => g.Size)}");
        return 0;
    }
}
