using System.ComponentModel;
using System.Globalization;
using FaceFusion.Compress.Assets;
using FaceFusion.Compress.Models.Checkpoints;
using FaceFusion.Compress.Training;
using Spectre.Console;
using Spectre.Console.Cli;
using FaceFusion.Compress.Reporting;

namespace FaceFusion.Compress.Cli.Commands;

internal sealed class DistillCommand : Command<DistillCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--teacher <T>")]
        [Description("Teacher: a checkpoint folder or any ONNX swapper with target/source inputs (run through ONNX Runtime).")]
        public string? Teacher { get; init; }

        [CommandOption("--student <S>")]
        [Description("Student: a built-in architecture (student) or a checkpoint folder (e.g. a pruned model).")]
        public string? Student { get; init; }

        [CommandOption("-c|--config <FILE>")]
        [Description("Training/distillation config (YAML); its distill: section sets the loss weights. Default: built-in defaults.")]
        public string? Config { get; init; }

        [CommandOption("--features <PAIRS>")]
        [Description("Feature pairs student_node=teacher_tensor, comma separated (CWD/MSE with 1×1 adapters).")]
        public string? Features { get; init; }

        [CommandOption("--attention-kv-pool <K>")]
        [Description("The student's attention pools keys and values over K×K cells (scores and softmax cost K² less; weights kept). Default 1: none.")]
        public int AttentionKvPool { get; init; } = 1;

        [CommandOption("--attention-kv-nodes <NODES>")]
        [Description("Comma-separated attention nodes that pool (default: all).")]
        public string? AttentionKvNodes { get; init; }

        [CommandOption("-o|--output <DIR>")]
        [Description("Output folder. Default artifacts/distill/<student>.")]
        public string? Output { get; init; }

        [CommandOption("--resume")]
        [Description("Continue from the output folder's latest checkpoint.")]
        public bool Resume { get; init; }

        [CommandOption("--steps <N>")]
        [Description("Stop after N steps of this run; resume later with --resume.")]
        public long? Steps { get; init; }

        public override ValidationResult Validate() =>
            Teacher is null || Student is null ? ValidationResult.Error("--teacher and --student are required")
            : AttentionKvPool < 1 ? ValidationResult.Error($"--attention-kv-pool {AttentionKvPool} is impossible (K ≥ 1; 1 pools nothing)")
            : ValidationResult.Success();
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var config = settings.Config is null ? new TrainConfig() : TrainConfig.Load(settings.Config);
        config.Model = settings.Student!;
        config.Teacher = settings.Teacher;
        if (settings.Features is not null)
            config.Distill.FeaturePairs.AddRange(settings.Features.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        config.Output = settings.Output ?? (settings.Config is null ? Path.Combine("artifacts", "distill", Path.GetFileName(Path.TrimEndingDirectorySeparator(settings.Student!))) : config.Output);
        if (settings.AttentionKvPool > 1)
        {
            // The student as trained: a copy of its checkpoint whose attention pools keys/values (same weights).
            var nodes = settings.AttentionKvNodes?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) ?? [];
            if (!Directory.Exists(config.Model))
                throw new ArgumentException($"--attention-kv-pool needs --student to be a checkpoint folder; '{config.Model}' is not one");
            var init = Path.Combine(config.Output, "student-init");
            Checkpoint.Rewrite(config.Model, init, g => g.WithAttentionKeyValuePool(settings.AttentionKvPool, nodes));
            config.Model = init;
        }
        var trainer = new SwapTrainer(config, AssetPaths.Locate(), Workspace.Root);
        long reached = 0;
        AnsiConsole.Progress().AutoRefresh(false) // rendered on the working thread: see InlineProgress
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("distilling", maxValue: config.TotalSteps);
                var progress = new InlineProgress<TrainProgress>(p =>
                {
                    task.Value = p.Step;
                    task.Description = string.Create(CultureInfo.InvariantCulture,
                        $"step {p.Step}/{p.TotalSteps} @{p.Resolution}px {p.ImagesPerSecond:0.0} img/s total {p.Losses["total"]:0.000} pixel {p.Losses["distill_pixel"]:0.000} id {p.Losses["identity"]:0.000}");
                    ctx.Refresh();
                });
                reached = trainer.Train(settings.Resume, progress, settings.Steps, cancellationToken);
                task.Value = reached;
            });
        AnsiConsole.MarkupLineInterpolated($"reached step {reached}/{config.TotalSteps}; log {Path.Combine(trainer.OutputDir, "train_log.csv")}; model {trainer.ModelDir}");
        return 0;
    }
}
