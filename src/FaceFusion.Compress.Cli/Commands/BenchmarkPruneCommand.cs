using System.ComponentModel;
using System.Globalization;
using FaceFusion.Compress.Assets;
using FaceFusion.Compress.Data;
using FaceFusion.Compress.Models.Checkpoints;
using FaceFusion.Compress.Models.Networks;
using FaceFusion.Compress.Pruning;
using Spectre.Console;
using Spectre.Console.Cli;
using FaceFusion.Compress.Reporting;

namespace FaceFusion.Compress.Cli.Commands;

internal sealed class BenchmarkPruneCommand : Command<BenchmarkPruneCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandArgument(0, "<MODEL>")]
        [Description("A trained checkpoint folder (e.g. datasets/pretrained/teacher-128).")]
        public string Model { get; init; } = "";

        [CommandOption("--target-macs <X>")]
        [Description("MAC target: a fraction of the original (0.6) or absolute (1.2G).")]
        public string? TargetMacs { get; init; }

        [CommandOption("--target-params <X>")]
        [Description("Parameter target: a fraction (0.6) or absolute (2.5M).")]
        public string? TargetParams { get; init; }

        [CommandOption("--criteria <LIST>")]
        [Description("Criteria compared at the same target, comma separated: taylor, l1, l2, bn, random. Default taylor,l1,random.")]
        public string Criteria { get; init; } = "taylor,l1,random";

        [CommandOption("--finetune <N>")]
        [Description("Fine-tuning steps after each pruning step. Default 200.")]
        public int Finetune { get; init; } = 200;

        [CommandOption("--final-finetune <N>")]
        [Description("Recovery fine-tuning steps after the last pruning step (cosine-decaying learning rate), the same for every criterion. Default 0.")]
        public int FinalFinetune { get; init; }

        [CommandOption("--control")]
        [Description("Add a control row: the unpruned model fine-tuned as many steps, with the same loss, as the longest-trained pruned one.")]
        public bool Control { get; init; }

        [CommandOption("--step-fraction <F>")]
        [Description("Largest share of the remaining prunable channels removed per step. Default 0.1.")]
        public double StepFraction { get; init; } = 0.1;

        [CommandOption("--eval-pairs <N>")]
        [Description("Faces for PSNR. Default 64.")]
        public int EvalPairs { get; init; } = 64;

        [CommandOption("--split <SPLIT>")]
        [Description("Evaluation split. Default test.")]
        public string Split { get; init; } = Splits.Test;

        [CommandOption("--train-limit <N>")]
        [Description("Train faces used (quick runs).")]
        public int? TrainLimit { get; init; }

        [CommandOption("--dataset <DIR>")]
        [Description("Prepared dataset. Default datasets/bundled.")]
        public string? Dataset { get; init; }

        [CommandOption("-o|--output <DIR>")]
        [Description("Folder for prune_benchmark.csv, each criterion's pruned model and ONNX, and its progress (re-running the same command continues an interrupted benchmark). Default artifacts/prune-benchmark.")]
        public string? Output { get; init; }

        public override ValidationResult Validate() =>
            (TargetMacs is null) == (TargetParams is null) ? ValidationResult.Error("give exactly one of --target-macs or --target-params")
            : Finetune < 0 ? ValidationResult.Error("--finetune must be ≥ 0")
            : FinalFinetune < 0 ? ValidationResult.Error("--final-finetune must be ≥ 0")
            : ValidationResult.Success();
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var criteria = settings.Criteria.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(c => c switch
        {
            "taylor" => ImportanceCriterion.Taylor, "l1" => ImportanceCriterion.L1, "l2" => ImportanceCriterion.L2, "bn" => ImportanceCriterion.BnScale,
            "random" => ImportanceCriterion.Random, _ => throw new ArgumentException($"--criteria: unknown criterion '{c}' (taylor, l1, l2, bn, random)"),
        }).ToList();
        var assets = AssetPaths.Locate();
        using var model = Checkpoint.Load(settings.Model);
        using var identity = new IdentityNetwork(assets.IdentityEmbedder);
        var target = settings.TargetMacs is not null ? PruneTarget.Parse(PruneTarget.Macs, settings.TargetMacs) : PruneTarget.Parse(PruneTarget.Params, settings.TargetParams!);
        var options = new PruneOptions
        {
            Target = target, DataDir = settings.Dataset ?? Workspace.BundledDataset, FinetuneSteps = settings.Finetune,
            Selection = new SelectionOptions { StepFraction = settings.StepFraction }, EvalPairs = settings.EvalPairs, TrainLimit = settings.TrainLimit,
        };
        var output = Path.GetFullPath(settings.Output ?? Path.Combine(Workspace.Root, "artifacts", "prune-benchmark"));
        var rows = PruneBenchmark.Run(model, options, criteria, identity, new InlineProgress<string>(line => AnsiConsole.WriteLine("  " + line)),
            (criterion, pruned) => Checkpoint.Save(Path.Combine(output, criterion.ToString().ToLowerInvariant()), pruned), settings.Split, workDir: output, recoverySteps: settings.FinalFinetune, control: settings.Control);
        var csv = PruneBenchmark.Write(output, rows);
        string P(double v) => double.IsFinite(v) ? v.ToString("P1", CultureInfo.InvariantCulture) : "—";
        var table = new Table().Title($"pruning {Path.GetFileName(Path.TrimEndingDirectorySeparator(settings.Model))} to {target} ({settings.Finetune} fine-tuning steps a step{(settings.FinalFinetune > 0 ? $", {settings.FinalFinetune} at the end" : "")}), {settings.Split} split")
            .AddColumns("criterion", "params", "GMAC", "p50 ms", $"{settings.Split} PSNR dB", "drop dB", "params −", "MACs −", "latency −", "latency/MAC");
        foreach (var r in rows)
            table.AddRow(r.Criterion, r.Params.ToString("N0", CultureInfo.InvariantCulture), (r.Macs / 1e9).ToString("0.000", CultureInfo.InvariantCulture),
                r.P50Ms.ToString("0.00", CultureInfo.InvariantCulture), r.TestPsnrDb.ToString("0.00", CultureInfo.InvariantCulture), r.PsnrDropDb.ToString("0.00", CultureInfo.InvariantCulture),
                P(r.ParamReduction), P(r.MacReduction), P(r.LatencyReduction), double.IsFinite(r.LatencyPerMac) ? r.LatencyPerMac.ToString("0.00", CultureInfo.InvariantCulture) : "—");
        AnsiConsole.Write(table);
        var best = rows.Skip(1).Where(r => r.Criterion != "control").OrderBy(r => r.PsnrDropDb).FirstOrDefault();
        if (best is not null)
            AnsiConsole.MarkupLineInterpolated($"targets ({best.Criterion}): params −{best.ParamReduction:P1} (≥ 40 %: {(best.ParamReduction >= 0.4 ? "met" : "not met")}), drop {best.PsnrDropDb:0.00} dB (≤ 0.3: {(best.PsnrDropDb <= 0.3 ? "met" : "not met")}), latency/MAC {best.LatencyPerMac:0.00} (≥ 0.7: {(best.LatencyPerMac >= 0.7 ? "met" : "not met")})");
        if (best is not null && rows.FirstOrDefault(r => r.Criterion == "control") is { } control)
            AnsiConsole.MarkupLineInterpolated($"against the control (unpruned, {control.Outcome.Split("; ")[^1]}): {best.Criterion} is {control.TestPsnrDb - best.TestPsnrDb:0.00} dB below it");
        AnsiConsole.MarkupLineInterpolated($"wrote {csv}");
        return 0;
    }
}
