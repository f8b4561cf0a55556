using System.ComponentModel;
using System.Globalization;
using System.Text.Json;
using FaceFusion.Compress.Assets;
using FaceFusion.Compress.Training;
using Spectre.Console;
using Spectre.Console.Cli;
using FaceFusion.Compress.Reporting;

namespace FaceFusion.Compress.Cli.Commands;

internal sealed class TrainCommand : Command<TrainCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("-c|--config <FILE>")]
        [Description("Training config (YAML), e.g. recipes/teacher-128.yaml.")]
        public string? Config { get; init; }

        [CommandOption("--resume")]
        [Description("Continue from the output folder's latest checkpoint.")]
        public bool Resume { get; init; }

        [CommandOption("--steps <N>")]
        [Description("Stop after N steps of this run (checkpointing at the end); resume later with --resume.")]
        public long? Steps { get; init; }

        [CommandOption("-o|--output <DIR>")]
        [Description("Override the config's output folder.")]
        public string? Output { get; init; }

        public override ValidationResult Validate() =>
            Config is null ? ValidationResult.Error("--config FILE is required")
            : Steps is <= 0 ? ValidationResult.Error("--steps must be positive")
            : ValidationResult.Success();
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var config = TrainConfig.Load(settings.Config!);
        if (settings.Output is not null) config.Output = settings.Output;
        var trainer = new SwapTrainer(config, AssetPaths.Locate(), Workspace.Root);
        long reached = 0;
        AnsiConsole.Progress().AutoRefresh(false) // rendered on the working thread: see InlineProgress
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("training", maxValue: config.TotalSteps);
                var progress = new InlineProgress<TrainProgress>(p =>
                {
                    task.Value = p.Step;
                    task.Description = string.Create(CultureInfo.InvariantCulture,
                        $"step {p.Step}/{p.TotalSteps} @{p.Resolution}px {p.ImagesPerSecond:0.0} img/s total {p.Losses["total"]:0.000} rec {p.Losses["reconstruction"]:0.000} id {p.Losses["identity"]:0.000}");
                    ctx.Refresh();
                });
                reached = trainer.Train(settings.Resume, progress, settings.Steps, cancellationToken);
                task.Value = reached;
            });
        AnsiConsole.MarkupLineInterpolated($"reached step {reached}/{config.TotalSteps}; log {Path.Combine(trainer.OutputDir, "train_log.csv")}");
        var metrics = Path.Combine(trainer.ModelDir, "metrics.json");
        if (reached >= config.TotalSteps && File.Exists(metrics))
        {
            var rows = JsonSerializer.Deserialize<List<SwapMetrics>>(File.ReadAllText(metrics))!;
            var table = new Table().Title($"held-out ({config.EvalSplit}) quality").AddColumns("model", "pairs", "recon PSNR dB", "recon SSIM", "id cosine to source", "target↔source cosine");
            foreach (var m in rows)
                table.AddRow(m.Model, m.Pairs.ToString(), $"{m.ReconstructionPsnr:0.00}", $"{m.ReconstructionSsim:0.000}", $"{m.IdentityCosine:0.000}", $"{m.SourceTargetCosine:0.000}");
            AnsiConsole.Write(table);
            AnsiConsole.MarkupLineInterpolated($"model: {trainer.ModelDir}");
        }
        return 0;
    }
}
