using FaceFusion.Compress.Assets;
using System.Text.Json;
using System.Globalization;
using FaceFusion.Compress.Data;
using FaceFusion.Compress.Export;
using FaceFusion.Compress.Models.Architectures;
using FaceFusion.Compress.Models.Checkpoints;
using FaceFusion.Compress.Models.Graph;
using FaceFusion.Compress.Models.Networks;
using FaceFusion.Compress.Reporting;
using FaceFusion.Compress.Runtime;
using FaceFusion.Compress.Training;
using Google.Protobuf;
using TorchSharp;
using static TorchSharp.torch;
using Tensor = TorchSharp.torch.Tensor;

namespace FaceFusion.Compress.Pruning;

/// <summary>Options of `ffc prune`.</summary>
public sealed record PruneOptions
{
    public required PruneTarget Target { get; init; }
    public required string DataDir { get; init; }
    public ImportanceCriterion Criterion { get; init; } = ImportanceCriterion.Taylor;
    public SelectionOptions Selection { get; init; } = new();
    /// <summary>Batches for Taylor importance.</summary>
    public int ImportanceBatches { get; init; } = 4;
    /// <summary>Fine-tuning steps after each pruning step.</summary>
    public int FinetuneSteps { get; init; } = 50;
    public int BatchSize { get; init; } = 8;
    public double LearningRate { get; init; } = 1e-4;
    /// <summary>Also distil from the unpruned model during fine-tuning (L1 to its outputs).</summary>
    public bool Distill { get; init; } = true;
    /// <summary>A step is rolled back when val PSNR falls more than this below the unpruned baseline.</summary>
    public double MaxPsnrDropDb { get; init; } = 0.5;
    /// <summary>
    /// A step is also rolled back when the `val` identity cosine of swaps onto other identities falls more than this
    /// below the unpruned baseline. Infinite (the default): identity is neither measured nor checked.
    /// </summary>
    public double MaxIdentityDrop { get; init; } = double.PositiveInfinity;
    public int EvalPairs { get; init; } = 64;
    public int MaxSteps { get; init; } = 50;
    public int Seed { get; init; } = 1;
    /// <summary>Train faces used (all when null): small runs and tests.</summary>
    public int? TrainLimit { get; init; }
    /// <summary>
    /// When set, every accepted step is saved here (model + step log), and a run that finds a saved state for the same
    /// original model continues after its last accepted step instead of starting over.
    /// </summary>
    public string? ProgressDir { get; init; }
}

/// <summary>One row of `prune_steps.csv`. <c>IdCosine</c>: the `val` identity cosine of cross-identity swaps, null when
/// no identity budget was set (it is then not measured).</summary>
public sealed record PruneStep(int Step, long Params, long Macs, double P50Ms, double PsnrDb, string Action, double? IdCosine = null);

/// <summary>
/// Iterative structured pruning: each step scores channels, removes at most a tenth of the remaining prunable
/// channels, fine-tunes (optionally distilling from the unpruned model), evaluates on `val`, and rolls back a step
/// whose PSNR drop from the unpruned baseline exceeds the budget — the run then stops at the last accepted step.
/// </summary>
public sealed class IterativePruner(PruneOptions options, IdentityNetwork identity)
{
    public static readonly string[] StepColumns = ["step", "params", "macs", "p50_ms", "psnr_db", "action", "id_cosine"];

    /// <summary>Prunes a copy of <paramref name="original"/>; returns the pruned model (the caller disposes it) and the step log.</summary>
    public (GraphModule Model, List<PruneStep> Steps, string Outcome) Run(GraphModule original, IProgress<PruneStep>? progress = null)
    {
        int resolution = original.Graph.Resolution;
        using var train = new FaceSwapData(options.DataDir, Splits.Train, resolution, options.TrainLimit);
        using var val = new FaceSwapData(options.DataDir, Splits.Val, resolution);
        var (evalTargets, evalSources) = SwapTrainer.EvaluationPairs(val, options.EvalPairs, options.Seed);
        original.eval();
        var saved = LoadProgress(original);
        bool checkIdentity = double.IsFinite(options.MaxIdentityDrop);
        double? ValId(GraphModule m) => checkIdentity ? ValIdentity(m, val, evalTargets, evalSources) : null;
        var baselineSummary = ModelSummary.Of(original.Graph, resolution);
        double baselinePsnr = saved?.Steps[0].PsnrDb ?? ValPsnr(original, val, evalTargets);
        double baselineLatency = saved?.Steps[0].P50Ms ?? LatencyMs(original);
        double? baselineId = saved?.Steps[0].IdCosine ?? ValId(original);
        double goal = options.Target.Goal(options.Target.Metric switch
        {
            PruneTarget.Params => baselineSummary.Params,
            PruneTarget.LatencyMs => baselineLatency,
            _ => baselineSummary.Macs,
        });
        double Value(PruneStep s) => options.Target.Metric switch { PruneTarget.Params => s.Params, PruneTarget.LatencyMs => s.P50Ms, _ => s.Macs };
        if (saved is not null)
        {
            // The saved steps do not depend on the target, so a smaller target continues them; a larger one that an
            // earlier saved step already met cannot (only the last step's weights are kept): start over.
            // Likewise a tighter PSNR-drop budget that a saved step exceeds.
            var accepted = saved.Steps.Where(s => s.Action == "accepted").ToList();
            // An identity budget needs every saved step's identity (steps saved without one start over).
            if (accepted.SkipLast(1).Any(s => Value(s) <= goal) || accepted.Any(s => baselinePsnr - s.PsnrDb > options.MaxPsnrDropDb)
                || checkIdentity && accepted.Any(s => s.IdCosine is not double c || baselineId - c > options.MaxIdentityDrop))
            {
                saved.Model.Dispose();
                saved = null;
            }
        }
        var steps = saved?.Steps ?? [new(0, baselineSummary.Params, baselineSummary.Macs, baselineLatency, baselinePsnr, "baseline", baselineId)];
        foreach (var s in steps) progress?.Report(s);

        var current = saved?.Model ?? original.Clone();
        string outcome = "target reached";
        for (int step = steps.Count; ; step++)
        {
            var last = steps.Last(s => s.Action is "baseline" or "accepted");
            if (Value(last) <= goal) break;
            if (step > options.MaxSteps) { outcome = $"stopped after {options.MaxSteps} steps before reaching {options.Target}"; break; }

            var analysis = new ChannelAnalysis(current.Graph);
            var importance = Score(current, analysis, train, step);
            var removal = ChannelSelector.Select(analysis, importance, options.Selection);
            if (removal.Count == 0)
            {
                outcome = "stopped: no group can lose more channels within the limits";
                steps.Add(last with { Step = step, Action = "stopped" });
                progress?.Report(steps[^1]);
                break;
            }
            var candidate = Pruner.Prune(current, removal, analysis);
            Finetune(candidate, original, train, step);
            candidate.eval();
            double psnr = ValPsnr(candidate, val, evalTargets);
            var summary = ModelSummary.Of(candidate.Graph, resolution);
            double latency = LatencyMs(candidate);
            double? id = ValId(candidate);
            bool identityOver = id is double c && baselineId is double b && b - c > options.MaxIdentityDrop;
            if (baselinePsnr - psnr > options.MaxPsnrDropDb || identityOver)
            {
                steps.Add(new PruneStep(step, summary.Params, summary.Macs, latency, psnr, "rolled_back", id));
                progress?.Report(steps[^1]);
                candidate.Dispose();
                outcome = baselinePsnr - psnr > options.MaxPsnrDropDb
                    ? $"stopped at step {step - 1}: step {step} dropped val PSNR by {baselinePsnr - psnr:0.00} dB (> {options.MaxPsnrDropDb} dB budget) and was rolled back"
                    : $"stopped at step {step - 1}: step {step} dropped val identity cosine by {baselineId - id:0.000} (> {options.MaxIdentityDrop} budget) and was rolled back";
                steps.Add(last with { Step = step, Action = "stopped" });
                break;
            }
            current.Dispose();
            current = candidate;
            steps.Add(new PruneStep(step, summary.Params, summary.Macs, latency, psnr, "accepted", id));
            SaveProgress(original, current, steps);
            progress?.Report(steps[^1]);
        }
        current.eval();
        return (current, steps, outcome);
    }

    /// <summary>
    /// Recovery fine-tuning after the last pruning step: <paramref name="steps"/> more steps of the same loss (distilling
    /// from <paramref name="original"/> when <see cref="PruneOptions.Distill"/>), with a cosine-decaying learning rate,
    /// then a `val` evaluation appended to <paramref name="log"/> as action <c>finetuned</c>. Iterative pruners fine-tune
    /// briefly between steps and once longer at the end; the short fine-tunes only need to keep importance scores
    /// meaningful. Trains <paramref name="pruned"/> in place (the caller still owns it). With a progress folder, the
    /// weights are saved every <paramref name="saveEvery"/> steps beside it (<c>.recovery</c>), and a run with the same
    /// original, options and step count continues from there (the optimizer's moments restart).
    /// </summary>
    public void Recover(GraphModule pruned, GraphModule original, int steps, List<PruneStep> log, IProgress<string>? progress = null, int saveEvery = 100)
    {
        if (steps <= 0) return;
        if (log.Count > 0 && log[^1].Action == "finetuned") return; // already recovered (a resumed run)
        int resolution = original.Graph.Resolution;
        using var train = new FaceSwapData(options.DataDir, Splits.Train, resolution, options.TrainLimit);
        using var val = new FaceSwapData(options.DataDir, Splits.Val, resolution);
        var (evalTargets, evalSources) = SwapTrainer.EvaluationPairs(val, options.EvalPairs, options.Seed);
        var dir = options.ProgressDir is { } p ? p + ".recovery" : null;
        var key = dir is null ? "" : $"{RunKey(original)}:{ArchitectureAndSteps(pruned, steps)}";
        int done = 0;
        if (dir is not null && File.Exists(Path.Combine(dir, "progress.json")))
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "progress.json")));
            if (doc.RootElement.GetProperty("key").GetString() == key)
            {
                done = doc.RootElement.GetProperty("done").GetInt32();
                using var savedModel = Checkpoint.Load(Path.Combine(dir, "model"));
                using (no_grad())
                    foreach (var (name, value) in savedModel.state_dict()) pruned.state_dict()[name].copy_(value);
                progress?.Report($"recovery fine-tuning: continuing after step {done} of {steps}");
            }
        }
        pruned.train();
        original.eval();
        using var optimizer = optim.Adam(pruned.parameters(), options.LearningRate);
        var schedule = optim.lr_scheduler.CosineAnnealingLR(optimizer, steps, options.LearningRate * 0.05);
        for (int i = 0; i < done; i++) schedule.step();
        int pruneStep = log.Count == 0 ? 0 : log[^1].Step;
        for (int i = done; i < steps; i++)
        {
            TrainStep(pruned, original, train, optimizer, 7_000_000L + 1_000_000L * pruneStep + i, $"recovery fine-tuning step {i}");
            schedule.step();
            if (dir is not null && ((i + 1) % saveEvery == 0 || i + 1 == steps))
            {
                SaveState(dir, pruned, JsonSerializer.Serialize(new { key, done = i + 1 }));
                progress?.Report($"recovery fine-tuning: step {i + 1} of {steps}");
            }
        }
        pruned.eval();
        var summary = ModelSummary.Of(pruned.Graph, resolution);
        log.Add(new PruneStep(pruneStep + 1, summary.Params, summary.Macs, LatencyMs(pruned), ValPsnr(pruned, val, evalTargets), "finetuned",
            double.IsFinite(options.MaxIdentityDrop) ? ValIdentity(pruned, val, evalTargets, evalSources) : null));
    }

    /// <summary>The recovery state belongs to one pruned architecture and one step count.</summary>
    private static string ArchitectureAndSteps(GraphModule pruned, int steps) => $"{pruned.Graph.ArchitectureHash()}:{steps}";

    private sealed record SavedProgress(List<PruneStep> Steps, GraphModule Model);

    /// <summary>
    /// Identifies the run a saved state belongs to: the original's architecture and weights, and the options that shape
    /// the steps — not the target nor the PSNR-drop budget, which only decide where they stop (a resumed run checks the
    /// saved steps against its own budget).
    /// </summary>
    private string RunKey(GraphModule original)
    {
        using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        hash.AppendData(System.Text.Encoding.UTF8.GetBytes(original.Graph.ArchitectureHash() + ShapingText(options)));
        foreach (var (key, value) in original.state_dict().OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            hash.AppendData(System.Text.Encoding.UTF8.GetBytes(key));
            using var floats = value.detach().to_type(ScalarType.Float32).contiguous();
            hash.AppendData(floats.bytes);
        }
        return Convert.ToHexString(hash.GetHashAndReset())[..16];
    }

    /// <summary>
    /// The options that shape the steps, as text for the progress key: not the target, the PSNR-drop budget nor the
    /// progress folder. Options added later (the identity budget, MAC-aware ranking) are printed only when set, so that
    /// progress saved by runs without them keeps its key and resumes.
    /// </summary>
    internal static string ShapingText(PruneOptions options)
    {
        var shaping = options with { ProgressDir = null, Target = new PruneTarget("any", 1, true), MaxPsnrDropDb = double.PositiveInfinity };
        var printed = PrintWithout(shaping.ToString(), "MacAware");
        if (!double.IsFinite(options.MaxIdentityDrop)) printed = PrintWithout(printed, "MaxIdentityDrop");
        // A record prints a set as its type name: the skipped groups are appended by content (only when there are any,
        // so that keys of runs without them stay what they were).
        var skip = options.Selection.Skip.Count == 0 ? "" : ":skip=" + string.Join(",", options.Selection.Skip.Order(StringComparer.Ordinal));
        return printed + skip + (options.Selection.MacAware ? ":mac_aware" : "");
    }

    /// <summary>A record's printout without one member (<c>, Name = value</c>), as printed before that member existed.</summary>
    private static string PrintWithout(string printed, string member) =>
        System.Text.RegularExpressions.Regex.Replace(printed, $@", {member} = [^,}}]*", "");

    private void SaveProgress(GraphModule original, GraphModule current, List<PruneStep> steps)
    {
        if (options.ProgressDir is not { } dir) return;
        SaveState(dir, current, JsonSerializer.Serialize(new { key = RunKey(original), steps }));
    }

    /// <summary>Writes <c>dir/model</c> and <c>dir/progress.json</c> beside it first, then swaps them in: a crash leaves the old state whole.</summary>
    private static void SaveState(string dir, GraphModule model, string progressJson)
    {
        var staging = dir + ".partial";
        // Both are replaced whole: only when the toolkit made them (the marker, or the progress layout of older runs).
        DeleteProgress(staging);
        OwnedFolder.Create(staging, "prune progress");
        Checkpoint.Save(Path.Combine(staging, "model"), model);
        AtomicFile.WriteAllText(Path.Combine(staging, "progress.json"), progressJson);
        DeleteProgress(dir);
        Directory.Move(staging, dir);
    }

    private static void DeleteProgress(string dir)
    {
        if (!Directory.Exists(dir)) return;
        if (!OwnedFolder.IsOwned(dir) && File.Exists(Path.Combine(dir, "progress.json")) && new DirectoryInfo(dir).LinkTarget is null) OwnedFolder.Mark(dir, "prune progress (older run)");
        OwnedFolder.Delete(dir);
    }

    private SavedProgress? LoadProgress(GraphModule original)
    {
        if (options.ProgressDir is not { } dir || !File.Exists(Path.Combine(dir, "progress.json"))) return null;
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "progress.json")));
        if (doc.RootElement.GetProperty("key").GetString() != RunKey(original)) return null; // another model or other options: start over
        var steps = doc.RootElement.GetProperty("steps").Deserialize<List<PruneStep>>()!;
        return new SavedProgress(steps, Checkpoint.Load(Path.Combine(dir, "model")));
    }

    /// <summary>Channel importance of <paramref name="model"/> by the configured criterion (Taylor uses the task loss on train batches).</summary>
    public Dictionary<int, double[]> Score(GraphModule model, ChannelAnalysis analysis, FaceSwapData train, int step)
    {
        // Eval mode: gradients flow, but BatchNorm running statistics are not disturbed by scoring batches.
        model.eval();
        return Importance.Compute(model, analysis, options.Criterion, b => TaskLoss(model, train, step * 1000L + b), options.ImportanceBatches, options.Seed + step);
    }

    /// <summary>The loss for importance and fine-tuning: reconstruction L1 on same-identity pairs and identity on all.</summary>
    private Tensor TaskLoss(GraphModule model, FaceSwapData data, long step, GraphModule? teacher = null)
    {
        using var batch = data.Sample(options.BatchSize, 0.5, options.Seed, step);
        var outputs = model.call(new Dictionary<string, Tensor> { [SwapperIO.Target] = batch.Target, [SwapperIO.Source] = batch.Source });
        var fake = outputs[SwapperIO.Output];
        var same = batch.Same;
        var recon = fake.sub(batch.Target).abs().mean([1, 2, 3]).mul(same).sum().div(same.sum().clamp_min(1));
        var id = nn.functional.cosine_similarity(identity.call(fake), batch.Source, 1).neg().add(1).mean();
        var background = fake.sub(batch.Target).abs().mul(batch.FaceMask.neg().add(1)).mean();
        var loss = recon.mul(10).add(id.mul(5)).add(background.mul(5));
        if (teacher is not null)
        {
            Tensor reference;
            using (no_grad()) reference = teacher.call(new Dictionary<string, Tensor> { [SwapperIO.Target] = batch.Target, [SwapperIO.Source] = batch.Source })[SwapperIO.Output];
            loss = loss.add(fake.sub(reference).abs().mean().mul(10));
        }
        return loss;
    }

    private void Finetune(GraphModule model, GraphModule original, FaceSwapData data, int pruneStep)
    {
        if (options.FinetuneSteps <= 0) return;
        model.train();
        original.eval();
        using var optimizer = optim.Adam(model.parameters(), options.LearningRate);
        for (int i = 0; i < options.FinetuneSteps; i++)
            TrainStep(model, original, data, optimizer, 1_000_000L * pruneStep + i, $"fine-tuning pruning step {pruneStep}");
    }

    /// <summary>One optimizer step on the task loss (plus L1 to <paramref name="original"/> when distilling); throws on a non-finite loss.</summary>
    private void TrainStep(GraphModule model, GraphModule original, FaceSwapData data, optim.Optimizer optimizer, long sample, string what)
    {
        using var scope = NewDisposeScope();
        optimizer.zero_grad();
        var loss = TaskLoss(model, data, sample, options.Distill ? original : null);
        if (!float.IsFinite(loss.item<float>())) throw new InvalidOperationException($"non-finite loss while {what}");
        loss.backward();
        optimizer.step();
    }

    /// <summary>Mean same-identity reconstruction PSNR of <paramref name="model"/> on the given faces (eval mode expected).</summary>
    public static double ValPsnr(GraphModule model, FaceSwapData val, int[] targets)
    {
        double sum = 0;
        using (no_grad())
            for (int start = 0; start < targets.Length; start += 16)
            {
                using var scope = NewDisposeScope();
                var t = targets.Skip(start).Take(16).ToArray();
                using var batch = val.Pairs(t, t);
                var output = model.call(new Dictionary<string, Tensor> { [SwapperIO.Target] = batch.Target, [SwapperIO.Source] = batch.Source })[SwapperIO.Output];
                sum += ImageMetrics.Psnr(output.clamp(-1.0, 1.0), batch.Target).sum().item<float>(); // as the bench measures
            }
        return sum / targets.Length;
    }

    /// <summary>Mean identity cosine between swaps of <paramref name="targets"/> onto <paramref name="sources"/> and the sources' embeddings (eval mode expected).</summary>
    public double ValIdentity(GraphModule model, FaceSwapData val, int[] targets, int[] sources)
    {
        double sum = 0;
        using (no_grad())
            for (int start = 0; start < targets.Length; start += 16)
            {
                using var scope = NewDisposeScope();
                using var batch = val.Pairs(targets.Skip(start).Take(16).ToArray(), sources.Skip(start).Take(16).ToArray());
                var output = model.call(new Dictionary<string, Tensor> { [SwapperIO.Target] = batch.Target, [SwapperIO.Source] = batch.Source })[SwapperIO.Output];
                sum += nn.functional.cosine_similarity(identity.call(output), batch.Source, 1).sum().item<float>();
            }
        return sum / targets.Length;
    }

    /// <summary>p50 batch-1 latency of the model's FP32 ONNX export in ONNX Runtime.</summary>
    public static double LatencyMs(GraphModule model, int runs = 30)
    {
        model.eval();
        using var swapper = new OrtSwapper(OnnxExporter.Export(model, new ExportOptions { MergeSiblingConvs = true }).ToByteArray(), model.Graph.Name);
        return SwapBench.P50Ms(swapper, runs);
    }

    /// <summary>Writes the pruned checkpoint, `prune_steps.csv` and the PSNR-vs-MACs plot into <paramref name="dir"/>.</summary>
    public static void WriteOutputs(string dir, GraphModule model, IReadOnlyList<PruneStep> steps, string outcome, IReadOnlyDictionary<string, string> metadata)
    {
        Checkpoint.Save(dir, model, metadata);
        var lines = new List<string> { string.Join(',', StepColumns) };
        lines.AddRange(steps.Where(s => s.Action != "baseline").Select(s => string.Create(CultureInfo.InvariantCulture,
            $"{s.Step},{s.Params},{s.Macs},{s.P50Ms:0.###},{s.PsnrDb:0.###},{s.Action},{s.IdCosine:0.####}")));
        FaceFusion.Compress.Assets.AtomicFile.WriteAllLines(Path.Combine(dir, "prune_steps.csv"), lines);
        AtomicFile.WriteAllText(Path.Combine(dir, "prune_outcome.txt"), outcome + Environment.NewLine);

        var plot = new ScottPlot.Plot();
        var kept = steps.Where(s => s.Action is "baseline" or "accepted").ToList();
        var line = plot.Add.Scatter(kept.Select(s => s.Macs / 1e9).ToArray(), kept.Select(s => s.PsnrDb).ToArray());
        line.LegendText = "accepted steps";
        foreach (var (action, label) in new[] { ("rolled_back", "rolled back"), ("finetuned", "after recovery fine-tuning") })
        {
            var marked = steps.Where(s => s.Action == action).ToList();
            if (marked.Count == 0) continue;
            var markers = plot.Add.Scatter(marked.Select(s => s.Macs / 1e9).ToArray(), marked.Select(s => s.PsnrDb).ToArray());
            markers.LegendText = label;
            markers.LineWidth = 0;
            markers.MarkerSize = 10;
        }
        plot.Title("iterative pruning: val PSNR vs MACs");
        plot.XLabel("GMAC");
        plot.YLabel("val PSNR (dB)");
        plot.ShowLegend();
        plot.SavePng(Path.Combine(dir, "prune_psnr_vs_macs.png"), 800, 500);
    }
}
