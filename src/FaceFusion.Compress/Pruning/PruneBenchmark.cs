using FaceFusion.Compress.Assets;
using System.Globalization;
using FaceFusion.Compress.Data;
using FaceFusion.Compress.Export;
using FaceFusion.Compress.Reporting;
using FaceFusion.Compress.Models.Graph;
using FaceFusion.Compress.Models.Networks;
using FaceFusion.Compress.Training;

namespace FaceFusion.Compress.Pruning;

/// <summary>One criterion's result in the pruning benchmark.</summary>
public sealed record PruneBenchmarkRow(string Criterion, long Params, long Macs, double P50Ms, double TestPsnrDb, double PsnrDropDb,
    double ParamReduction, double MacReduction, double LatencyReduction, string Outcome)
{
    /// <summary>Latency reduction per unit of MAC reduction (the issue asks ≥ 0.7).</summary>
    public double LatencyPerMac => MacReduction > 0 ? LatencyReduction / MacReduction : double.NaN;
}

/// <summary>
/// `ffc benchmark prune`: prunes the same model to the same target with several channel-importance criteria (Taylor,
/// L1, uniform random, …), fine-tuning each the same way, and measures params, MACs, ONNX Runtime p50 and `test`
/// PSNR against the unpruned model, so users see what the criterion buys. Rollback is off (the budget is only
/// reported), so every criterion reaches the same MACs; each then gets the same recovery fine-tuning. Optionally a
/// control row: the unpruned model fine-tuned as long, so gains from further training are not credited to pruning.
/// </summary>
public static class PruneBenchmark
{
    /// <summary>Files made only to be timed: the fastest FP32 form (merged heads).</summary>
    private static readonly ExportOptions Timing = new() { MergeSiblingConvs = true };

    public static readonly string[] Columns =
        ["criterion", "params", "macs", "p50_ms", "test_psnr_db", "psnr_drop_db", "param_reduction", "mac_reduction", "latency_reduction", "latency_per_mac", "outcome"];

    /// <summary>
    /// Prunes <paramref name="model"/> once per criterion and measures each result. With <paramref name="workDir"/>,
    /// each criterion keeps its progress in <c>workDir/&lt;criterion&gt;.progress</c>: an interrupted benchmark run again
    /// with the same options continues after the last accepted step, and finished criteria are not pruned again.
    /// Latency is measured at the end for all models together in interleaved rounds (fair under background load).
    /// </summary>
    public static List<PruneBenchmarkRow> Run(GraphModule model, PruneOptions options, IReadOnlyList<ImportanceCriterion> criteria, IdentityNetwork identity,
        IProgress<string>? progress = null, Action<ImportanceCriterion, GraphModule>? keep = null, string split = Splits.Test, string? workDir = null, int recoverySteps = 0, bool control = false)
    {
        int resolution = model.Graph.Resolution;
        using var test = new FaceSwapData(options.DataDir, split, resolution);
        var (targets, _) = SwapTrainer.EvaluationPairs(test, options.EvalPairs, options.Seed);
        model.eval();
        var baseline = ModelSummary.Of(model.Graph, resolution);
        double baselinePsnr = IterativePruner.ValPsnr(model, test, targets);
        var onnxDir = workDir ?? Path.Combine(Path.GetTempPath(), $"ffc-prune-benchmark-{Environment.ProcessId}-{Guid.NewGuid():N}");
        if (workDir is null) OwnedFolder.Create(onnxDir, "prune benchmark (temporary)");
        else Directory.CreateDirectory(onnxDir);
        try
        {
            var onnx = new List<string> { Path.Combine(onnxDir, "unpruned.onnx") };
            OnnxExporter.ExportToFile(model, onnx[0], Timing);
            progress?.Report(string.Create(CultureInfo.InvariantCulture, $"unpruned: {baseline.Params} params, {baseline.Macs} MACs, {split} PSNR {baselinePsnr:0.00} dB"));
            var measured = new List<(string Name, ModelSummary Summary, double Psnr, string Outcome)>();
            int longestTraining = 0;
            foreach (var criterion in criteria)
            {
                var name = criterion.ToString().ToLowerInvariant();
                var criterionOptions = options with
                {
                    Criterion = criterion, MaxPsnrDropDb = double.PositiveInfinity,
                    ProgressDir = workDir is null ? null : Path.Combine(workDir, $"{name}.progress"),
                };
                var pruner = new IterativePruner(criterionOptions, identity);
                var (pruned, steps, outcome) = pruner.Run(model, new InlineProgress<PruneStep>(s => progress?.Report($"{name}: step {s.Step} MACs {s.Macs} val PSNR {s.PsnrDb:0.00} {s.Action}")));
                using (pruned)
                {
                    pruner.Recover(pruned, model, recoverySteps, steps, new InlineProgress<string>(s => progress?.Report($"{name}: {s}")));
                    if (recoverySteps > 0) progress?.Report($"{name}: after {recoverySteps} recovery fine-tuning steps val PSNR {steps[^1].PsnrDb:0.00}");
                    longestTraining = Math.Max(longestTraining, steps.Count(s => s.Action == "accepted") * options.FinetuneSteps + Math.Max(0, recoverySteps));
                    pruned.eval();
                    measured.Add((name, ModelSummary.Of(pruned.Graph, resolution), IterativePruner.ValPsnr(pruned, test, targets),
                        recoverySteps > 0 ? $"{outcome}; then {recoverySteps} recovery fine-tuning steps" : outcome));
                    onnx.Add(Path.Combine(onnxDir, $"{name}.onnx"));
                    OnnxExporter.ExportToFile(pruned, onnx[^1], Timing);
                    keep?.Invoke(criterion, pruned);
                }
            }
            if (control)
            {
                // Fine-tuning also trains: a pruned model can gain on a model that was not trained to convergence. The
                // control is the unpruned model fine-tuned as long as the longest-trained pruned one, with the same loss.
                var controlPruner = new IterativePruner(options with { ProgressDir = workDir is null ? null : Path.Combine(workDir, "control.progress") }, identity);
                using var tuned = model.Clone();
                controlPruner.Recover(tuned, model, longestTraining, [], new InlineProgress<string>(s => progress?.Report($"control: {s}")));
                tuned.eval();
                measured.Add(("control", ModelSummary.Of(tuned.Graph, resolution), IterativePruner.ValPsnr(tuned, test, targets), $"unpruned; fine-tuned {longestTraining} steps"));
                onnx.Add(Path.Combine(onnxDir, "control.onnx"));
                OnnxExporter.ExportToFile(tuned, onnx[^1], Timing);
            }
            progress?.Report("latency: all models in interleaved rounds");
            var times = InterleavedLatency.Measure(onnx, rounds: 60);
            double baselineP50 = times[0].P50Ms;
            var rows = new List<PruneBenchmarkRow> { new("unpruned", baseline.Params, baseline.Macs, baselineP50, baselinePsnr, 0, 0, 0, 0, "baseline") };
            for (int i = 0; i < measured.Count; i++)
            {
                var (name, summary, psnr, outcome) = measured[i];
                double p50 = times[i + 1].P50Ms;
                rows.Add(new PruneBenchmarkRow(name, summary.Params, summary.Macs, p50, psnr, baselinePsnr - psnr,
                    1 - (double)summary.Params / baseline.Params, 1 - (double)summary.Macs / baseline.Macs, 1 - p50 / baselineP50, outcome));
            }
            return rows;
        }
        finally
        {
            if (workDir is null) OwnedFolder.Delete(onnxDir);
        }
    }

    /// <summary>Writes `prune_benchmark.csv` (<see cref="Columns"/>); returns its path.</summary>
    public static string Write(string dir, IReadOnlyList<PruneBenchmarkRow> rows)
    {
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, "prune_benchmark.csv");
        string F(double v) => double.IsFinite(v) ? v.ToString("0.####", CultureInfo.InvariantCulture) : "";
        AtomicFile.WriteAllLines(path, rows.Select(r => string.Join(',', r.Criterion, r.Params, r.Macs, F(r.P50Ms), F(r.TestPsnrDb), F(r.PsnrDropDb),
            F(r.ParamReduction), F(r.MacReduction), F(r.LatencyReduction), F(r.LatencyPerMac), r.Outcome.Replace(',', ';'))).Prepend(string.Join(',', Columns)));
        return path;
    }
}
