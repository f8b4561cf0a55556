using System.ComponentModel;
using System.Globalization;
using FaceFusion.Compress.Assets;
using FaceFusion.Compress.Data;
using FaceFusion.Compress.Models.Checkpoints;
using FaceFusion.Compress.Models.Graph;
using FaceFusion.Compress.Models.Networks;
using FaceFusion.Compress.Pruning;
using FaceFusion.Compress.Training;
using Spectre.Console;
using Spectre.Console.Cli;
using FaceFusion.Compress.Reporting;

namespace FaceFusion.Compress.Cli.Commands;

/// <summary>Options shared by prune and sensitivity.</summary>
internal class PruneSettingsBase : CommandSettings
{
    [CommandArgument(0, "<MODEL>")]
    [Description("A trained checkpoint folder.")]
    public string Model { get; init; } = "";

    [CommandOption("--dataset <DIR>")]
    [Description("Prepared dataset (train for importance and fine-tuning, val for decisions). Default datasets/bundled.")]
    public string? Dataset { get; init; }

    [CommandOption("--criterion <C>")]
    [Description("taylor (default), l1, l2, bn or random.")]
    public string Criterion { get; init; } = "taylor";

    [CommandOption("--skip <NODES>")]
    [Description("Comma-separated node names whose groups are never pruned.")]
    public string? Skip { get; init; }

    [CommandOption("--min-channels <N>")]
    [Description("No group goes below N channels. Default 8.")]
    public int MinChannels { get; init; } = 8;

    [CommandOption("--channel-multiple <N>")]
    [Description("Groups of at least N channels keep sizes that are multiples of N (CPU kernels block channels by 8 with AVX2, 16 with AVX-512); 1 removes single channels. Default 8.")]
    public int ChannelMultiple { get; init; } = 8;

    [CommandOption("--mac-aware")]
    [Description("Rank channels by importance per MAC saved: at equal importance the full-resolution layers lose channels first.")]
    public bool MacAware { get; init; }

    [CommandOption("--eval-pairs <N>")]
    [Description("val faces used for PSNR decisions. Default 64.")]
    public int EvalPairs { get; init; } = 64;

    [CommandOption("--train-limit <N>")]
    [Description("Use only the first N train faces (quick runs).")]
    public int? TrainLimit { get; init; }

    internal ImportanceCriterion ParsedCriterion => Criterion.ToLowerInvariant() switch
    {
        "taylor" => ImportanceCriterion.Taylor, "l1" => ImportanceCriterion.L1, "l2" => ImportanceCriterion.L2,
        "bn" or "bnscale" => ImportanceCriterion.BnScale, "random" => ImportanceCriterion.Random,
        _ => throw new ArgumentException($"--criterion '{Criterion}': use taylor, l1, l2, bn or random"),
    };

    internal HashSet<string> SkipSet => (Skip ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet();
}

internal sealed class PruneCommand : Command<PruneCommand.Settings>
{
    public sealed class Settings : PruneSettingsBase
    {
        [CommandArgument(1, "[MODEL_FOR_GROUPS]")]
        [Description("With `groups` as the first argument: the model whose channel groups are listed.")]
        public string? GroupsModel { get; init; }

        [CommandOption("--all")]
        [Description("With `groups`: also list groups that cannot be pruned.")]
        public bool All { get; init; }

        [CommandOption("-r|--resolution <R>")]
        [Description("With `groups`: resolution for built-in architectures. Default 128.")]
        public int Resolution { get; init; } = 128;

        public bool ListGroups => Model == "groups";

        [CommandOption("--target-macs <X>")]
        [Description("Target MACs: a fraction of the original (0.6) or an absolute value (1.2G).")]
        public string? TargetMacs { get; init; }

        [CommandOption("--target-params <X>")]
        [Description("Target params: a fraction (0.6) or an absolute value (2.5M).")]
        public string? TargetParams { get; init; }

        [CommandOption("--target-latency-ms <X>")]
        [Description("Target ONNX Runtime p50 latency: a fraction (0.6) or milliseconds (8ms).")]
        public string? TargetLatency { get; init; }

        [CommandOption("-o|--output <DIR>")]
        [Description("Folder for the pruned checkpoint, prune_steps.csv and the PSNR-vs-MACs plot.")]
        public string? Output { get; init; }

        [CommandOption("--step-fraction <F>")]
        [Description("Largest share of the remaining prunable channels removed per step. Default 0.1.")]
        public double StepFraction { get; init; } = 0.1;

        [CommandOption("--finetune-steps <N>")]
        [Description("Fine-tuning steps after each pruning step. Default 50.")]
        public int FinetuneSteps { get; init; } = 50;

        [CommandOption("--final-finetune <N>")]
        [Description("Recovery fine-tuning steps after the last accepted step (cosine-decaying learning rate), logged as action finetuned. Default 0.")]
        public int FinalFinetune { get; init; }

        [CommandOption("--max-drop-db <D>")]
        [Description("Roll a step back when val PSNR falls more than D dB below the unpruned model. Default 0.5.")]
        public double MaxDropDb { get; init; } = 0.5;

        [CommandOption("--max-id-drop <C>")]
        [Description("Also roll a step back when the val identity cosine of cross-identity swaps falls more than C below the unpruned model's (then measured at every step and logged in prune_steps.csv's id_cosine). Default: not checked.")]
        public double? MaxIdDrop { get; init; }

        [CommandOption("--no-distill")]
        [Description("Fine-tune without distilling from the unpruned model.")]
        public bool NoDistill { get; init; }

        [CommandOption("--batch <N>")]
        [Description("Batch size for importance and fine-tuning. Default 8.")]
        public int Batch { get; init; } = 8;

        public override ValidationResult Validate()
        {
            if (ListGroups) return GroupsModel is null ? ValidationResult.Error("usage: ffc prune groups MODEL") : ValidationResult.Success();
            int targets = new[] { TargetMacs, TargetParams, TargetLatency }.Count(t => t is not null);
            if (targets != 1) return ValidationResult.Error("give exactly one of --target-macs, --target-params, --target-latency-ms");
            if (Output is null) return ValidationResult.Error("-o|--output DIR is required");
            if (StepFraction is <= 0 or > 0.5) return ValidationResult.Error("--step-fraction must be in (0, 0.5]");
            if (ChannelMultiple < 1) return ValidationResult.Error("--channel-multiple must be ≥ 1");
            if (FinalFinetune < 0) return ValidationResult.Error("--final-finetune must be ≥ 0");
            return ValidationResult.Success();
        }
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        if (settings.ListGroups) return PruneGroupsCommand.List(settings.GroupsModel!, settings.Resolution, settings.All);
        var target = settings.TargetMacs is not null ? PruneTarget.Parse(PruneTarget.Macs, settings.TargetMacs)
            : settings.TargetParams is not null ? PruneTarget.Parse(PruneTarget.Params, settings.TargetParams)
            : PruneTarget.Parse(PruneTarget.LatencyMs, settings.TargetLatency!);
        var assets = AssetPaths.Locate();
        using var model = Checkpoint.Load(settings.Model);
        using var identity = new IdentityNetwork(assets.IdentityEmbedder);
        var options = new PruneOptions
        {
            Target = target, DataDir = settings.Dataset ?? Workspace.BundledDataset, Criterion = settings.ParsedCriterion,
            Selection = new SelectionOptions { StepFraction = settings.StepFraction, MinChannels = settings.MinChannels, ChannelMultiple = settings.ChannelMultiple, MacAware = settings.MacAware, Skip = settings.SkipSet },
            FinetuneSteps = settings.FinetuneSteps, MaxPsnrDropDb = settings.MaxDropDb, MaxIdentityDrop = settings.MaxIdDrop ?? double.PositiveInfinity, Distill = !settings.NoDistill,
            EvalPairs = settings.EvalPairs, BatchSize = settings.Batch, TrainLimit = settings.TrainLimit,
            // Accepted steps are kept beside the output: re-running the same command continues an interrupted run.
            ProgressDir = Path.GetFullPath(settings.Output!) + ".progress",
        };
        var table = new Table().Title($"pruning {model.Graph.Name} to {target} ({settings.Criterion})").AddColumns("step", "params", "MACs", "p50 ms", "val PSNR dB", "action");
        (GraphModule Model, List<PruneStep> Steps, string Outcome) result = default;
        AnsiConsole.Live(table).Start(ctx =>
        {
            var progress = new InlineProgress<PruneStep>(s =>
            {
                table.AddRow(s.Step.ToString(), ModelSummary.Human(s.Params), ModelSummary.Human(s.Macs), s.P50Ms.ToString("0.00", CultureInfo.InvariantCulture),
                    s.PsnrDb.ToString("0.00", CultureInfo.InvariantCulture), s.Action);
                ctx.Refresh();
            });
            var pruner = new IterativePruner(options, identity);
            result = pruner.Run(model, progress);
            if (settings.FinalFinetune > 0)
            {
                pruner.Recover(result.Model, model, settings.FinalFinetune, result.Steps);
                ((IProgress<PruneStep>)progress).Report(result.Steps[^1]);
            }
        });
        // The display ran the lambda to its end, so the result is set (the compiler cannot see through the lambda).
        if (result.Model is null || result.Steps is null || result.Outcome is null) throw new InvalidOperationException("pruning returned no result");
        using (result.Model)
        {
            IterativePruner.WriteOutputs(settings.Output!, result.Model, result.Steps, result.Outcome, new Dictionary<string, string>
            {
                ["pruned_from"] = Path.GetFullPath(settings.Model), ["prune_target"] = target.ToString(), ["prune_criterion"] = settings.Criterion,
            });
            var first = result.Steps[0];
            var last = result.Steps.Last(s => s.Action is "baseline" or "accepted" or "finetuned");
            AnsiConsole.MarkupLineInterpolated($"{result.Outcome}. params {100.0 * last.Params / first.Params:0.0} %, MACs {100.0 * last.Macs / first.Macs:0.0} %, p50 {first.P50Ms:0.00} → {last.P50Ms:0.00} ms, val PSNR {first.PsnrDb:0.00} → {last.PsnrDb:0.00} dB");
            AnsiConsole.MarkupLineInterpolated($"pruned model: {settings.Output} (graph.json, weights.safetensors, prune_steps.csv, prune_psnr_vs_macs.png)");
        }
        return 0;
    }
}

internal sealed class SensitivityCommand : Command<SensitivityCommand.Settings>
{
    public sealed class Settings : PruneSettingsBase
    {
        [CommandOption("--ratios <LIST>")]
        [Description("Fractions of each group removed. Default 0.1,0.2,…,0.9.")]
        public string Ratios { get; init; } = "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9";

        [CommandOption("--budget-macs <X>")]
        [Description("Also allocate per-group ratios that meet this MAC budget (fraction or absolute).")]
        public string? BudgetMacs { get; init; }

        [CommandOption("-o|--output <DIR>")]
        [Description("Folder for sensitivity.csv and sensitivity.png. Default artifacts/prune/sensitivity.")]
        public string? Output { get; init; }
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var ratios = settings.Ratios.Split(',').Select(r => double.Parse(r, CultureInfo.InvariantCulture)).ToArray();
        if (ratios.Any(r => r is <= 0 or >= 1)) throw new ArgumentException($"--ratios '{settings.Ratios}': each ratio must be in (0, 1)");
        var assets = AssetPaths.Locate();
        using var model = Checkpoint.Load(settings.Model);
        using var identity = new IdentityNetwork(assets.IdentityEmbedder);
        var dataDir = settings.Dataset ?? Workspace.BundledDataset;
        var options = new PruneOptions { Target = PruneTarget.Parse(PruneTarget.Macs, "1"), DataDir = dataDir, Criterion = settings.ParsedCriterion, TrainLimit = settings.TrainLimit };
        var analysis = new ChannelAnalysis(model.Graph);
        Dictionary<int, double[]> importance;
        using (var train = new FaceSwapData(dataDir, Splits.Train, model.Graph.Resolution, settings.TrainLimit))
            importance = new IterativePruner(options, identity).Score(model, analysis, train, 0);
        List<SensitivityRow> rows = [];
        AnsiConsole.Status().AutoRefresh(false).Start("sensitivity", ctx => // rendered on the working thread: see InlineProgress
            rows = Sensitivity.Measure(model, importance, dataDir, ratios, settings.EvalPairs, settings.MinChannels, settings.SkipSet,
                new InlineProgress<string>(s => { ctx.Status($"sensitivity: {s}"); ctx.Refresh(); })));
        var dir = settings.Output ?? Path.Combine(Workspace.Root, "artifacts", "prune", "sensitivity");
        Sensitivity.WriteOutputs(dir, rows, $"{model.Graph.Name}: val PSNR drop when one group is pruned alone ({settings.Criterion})");
        var table = new Table().Title("most and least sensitive groups at 50 %").AddColumns("group", "producer", "PSNR drop dB", "MACs");
        foreach (var r in rows.Where(r => Math.Abs(r.Ratio - 0.5) < 1e-6).OrderByDescending(r => r.PsnrDropDb))
            table.AddRow(r.Group.ToString(), Markup.Escape(r.Producer), r.PsnrDropDb.ToString("0.000", CultureInfo.InvariantCulture), ModelSummary.Human(r.Macs));
        AnsiConsole.Write(table);
        if (settings.BudgetMacs is not null)
        {
            long original = ModelSummary.Of(model.Graph, model.Graph.Resolution).Macs;
            var budget = (long)PruneTarget.Parse(PruneTarget.Macs, settings.BudgetMacs).Goal(original);
            var allocation = Sensitivity.Allocate(rows, original, budget);
            var lines = new List<string> { "group,producer,ratio" };
            lines.AddRange(allocation.Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Key},{analysis.Group(kv.Key).Producers[0]},{kv.Value:0.###}")));
            AtomicFile.WriteAllLines(Path.Combine(dir, "allocation.csv"), lines);
            AnsiConsole.MarkupLineInterpolated($"per-group ratios for MACs ≤ {ModelSummary.Human(budget)} (approximating savings as additive): {Path.Combine(dir, "allocation.csv")}");
        }
        AnsiConsole.MarkupLineInterpolated($"written {Path.Combine(dir, "sensitivity.csv")} and sensitivity.png");
        return 0;
    }
}
