using System.ComponentModel;
using FaceFusion.Compress.Assets;
using FaceFusion.Compress.Recipes;
using Spectre.Console;
using Spectre.Console.Cli;

namespace FaceFusion.Compress.Cli.Commands;

internal sealed class ReportCommand : Command<ReportCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandArgument(0, "<RUN>")]
        [Description("A recipe run folder (artifacts/<run>, with run.json).")]
        public string Run { get; init; } = "";

        [CommandOption("-o|--output <DIR>")]
        [Description("Where report.md, report.csv and the plots go. Default RUN/report.")]
        public string? Output { get; init; }
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var (md, csv) = RecipeRunner.Report(Path.GetFullPath(settings.Run), AssetPaths.Locate(), Workspace.Root,
            settings.Output is null ? null : Path.GetFullPath(settings.Output));
        AnsiConsole.MarkupLineInterpolated($"wrote {md} and {csv}");
        return 0;
    }
}

internal sealed class RecommendCommand : Command<RecommendCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandArgument(0, "<RUN>")]
        [Description("One or more recipe run folders (e.g. a recipe's quality and lightweight profiles).")]
        public string[] Runs { get; init; } = [];

        [CommandOption("--latency-ms <X>")]
        [Description("Budget: ONNX Runtime p50 batch-1 latency in milliseconds.")]
        public double? LatencyMs { get; init; }

        [CommandOption("--size-mb <X>")]
        [Description("Budget: model file size in MB.")]
        public double? SizeMb { get; init; }

        public override ValidationResult Validate() =>
            LatencyMs is null == SizeMb is null ? ValidationResult.Error("give exactly one budget: --latency-ms X or --size-mb X")
            : LatencyMs is <= 0 || SizeMb is <= 0 ? ValidationResult.Error("the budget must be positive")
            : ValidationResult.Success();
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var rows = settings.Runs.SelectMany(run => Recommendation.Read(Recommendation.FindReportCsv(run), Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(run))))).ToList();
        var result = Recommendation.Choose(rows, settings.LatencyMs, settings.SizeMb);
        Console.WriteLine(result.Explanation);
        return result.Choice is null ? 3 : 0;
    }
}
