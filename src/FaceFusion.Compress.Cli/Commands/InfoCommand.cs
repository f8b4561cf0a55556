using System.ComponentModel;
using FaceFusion.Compress.Models.Architectures;
using FaceFusion.Compress.Models.Checkpoints;
using FaceFusion.Compress.Models.Graph;
using Spectre.Console;
using Spectre.Console.Cli;

namespace FaceFusion.Compress.Cli.Commands;

internal sealed class InfoCommand : Command<InfoCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandArgument(0, "<MODEL>")]
        [Description("A checkpoint folder, a graph.json, or a built-in architecture: teacher, student.")]
        public string Model { get; init; } = "";

        [CommandOption("-r|--resolution <R>")]
        [Description("Input resolution for shapes and MACs. Default 128 (a checkpoint's own when it has one).")]
        public int? Resolution { get; init; }

        [CommandOption("--json")]
        [Description("Print {params, macs, nodes:[[{name, kind, params, macs}]]} as JSON for scripts.")]
        public bool Json { get; init; }

        public override ValidationResult Validate() =>
            Resolution is < 1 or > SwapperIO.MaxResolution
                ? ValidationResult.Error($"--resolution {Resolution}: give 1 to {SwapperIO.MaxResolution} px (MAC counts beyond overflow)")
                : ValidationResult.Success();
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        int requested = settings.Resolution ?? 128;
        var graph = Checkpoint.ResolveGraph(settings.Model, requested);
        int resolution = settings.Resolution ?? (graph.Resolution > 0 ? graph.Resolution : 128);
        var summary = ModelSummary.Of(graph, resolution);
        if (settings.Json)
        {
            Console.WriteLine(summary.ToJson());
            return 0;
        }
        var table = new Table().Title($"{graph.Name} at {resolution}x{resolution} (architecture {graph.ArchitectureHash()})")
            .AddColumns("node", "kind", "stage", "output", "params", "MACs");
        foreach (var n in summary.Nodes)
            table.AddRow(n.Name, n.Op, n.Stage ?? "", n.Output.ToString(), ModelSummary.Human(n.Params), ModelSummary.Human(n.Macs));
        AnsiConsole.Write(table);
        var stages = new Table().Title("per stage").AddColumns("stage", "params", "MACs");
        foreach (var stage in summary.Stages)
            stages.AddRow(stage, ModelSummary.Human(summary.StageParams(stage)), ModelSummary.Human(summary.StageMacs(stage)));
        stages.AddRow("[bold]total[/]", $"[bold]{ModelSummary.Human(summary.Params)}[/] ({summary.Params:N0})", $"[bold]{ModelSummary.Human(summary.Macs)}[/] ({summary.Macs:N0})");
        AnsiConsole.Write(stages);
        if (graph.Inputs.Any(i => i.Name == SwapperIO.Target) && graph.Name != "teacher")
        {
            var teacher = ModelSummary.Of(SwapperArchitectures.Teacher(resolution), resolution);
            AnsiConsole.MarkupLineInterpolated(
                $"vs built-in teacher at {resolution}: params {100.0 * summary.Params / teacher.Params:0.0} %, MACs {100.0 * summary.Macs / teacher.Macs:0.0} %, decoder MACs {100.0 * summary.StageMacs("decoder") / Math.Max(1, teacher.StageMacs("decoder")):0.0} %");
        }
        return 0;
    }
}
