using System.ComponentModel;
using FaceFusion.Compress.Models.Checkpoints;
using FaceFusion.Compress.Models.Graph;
using Spectre.Console;
using Spectre.Console.Cli;

namespace FaceFusion.Compress.Cli.Commands;

/// <summary>`ffc warm-start GRAPH --from CHECKPOINT -o DIR`: an edited architecture initialised from a trained model.</summary>
internal sealed class WarmStartCommand : Command<WarmStartCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandArgument(0, "<GRAPH>")]
        [Description("The new architecture: a graph.json (e.g. a trained model's graph with its decoder ending replaced).")]
        public string Graph { get; init; } = "";

        [CommandOption("--from <CHECKPOINT>")]
        [Description("The trained checkpoint folder whose parameters are copied wherever name and shape match.")]
        public string? From { get; init; }

        [CommandOption("-o|--output <DIR>")]
        [Description("The checkpoint folder to write (graph.json + weights.safetensors).")]
        public string? Output { get; init; }

        [CommandOption("--seed <N>")]
        [Description("Seed of the fresh parameters' initialisation. Default 0.")]
        public long Seed { get; init; }

        [CommandOption("--icnr")]
        [Description("Fresh convs that feed a depth_to_space (directly or through element-wise ops) start with equal sub-pixels (ICNR): the upsampling starts as nearest-neighbour, without a checkerboard.")]
        public bool Icnr { get; init; }

        public override ValidationResult Validate() =>
            From is null ? ValidationResult.Error("--from CHECKPOINT is required")
            : Output is null ? ValidationResult.Error("-o|--output DIR is required")
            : ValidationResult.Success();
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        if (!File.Exists(settings.Graph)) throw new FileNotFoundException($"{settings.Graph}: no such graph file", settings.Graph);
        var graph = NetworkGraph.FromJson(File.ReadAllText(settings.Graph), settings.Graph);
        var start = Checkpoint.WarmStartFrom(graph, settings.From!, settings.Seed, settings.Icnr);
        using var model = start.Model;
        Checkpoint.Save(settings.Output!, model, new Dictionary<string, string>
        {
            ["warm_start_from"] = Path.GetFullPath(settings.From!),
            ["warm_start_seed"] = settings.Seed.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["warm_start_icnr"] = settings.Icnr ? "true" : "false",
        });
        static string Nodes(IEnumerable<string> keys) => string.Join(", ", keys.Select(k => k.Split('.')[0]).Distinct());
        AnsiConsole.MarkupLineInterpolated($"copied {start.Copied.Count} tensors from {settings.From}");
        AnsiConsole.MarkupLineInterpolated($"fresh (seed {settings.Seed}): {start.Fresh.Count} tensors of {Nodes(start.Fresh)}");
        if (start.Unused.Count > 0) AnsiConsole.MarkupLineInterpolated($"left behind: {start.Unused.Count} tensors of {Nodes(start.Unused)}");
        AnsiConsole.MarkupLineInterpolated($"wrote {settings.Output}");
        return 0;
    }
}
