using FaceFusion.Compress.Assets;
using System.Globalization;
using System.Text;
using FaceFusion.Compress.Reporting;

namespace FaceFusion.Compress.Recipes;

/// <summary>`report.md` and `report.csv` of a recipe run: the models stage by stage, a Pareto chart, loss curves.</summary>
public static class RunReport
{
    /// <summary>The columns of report.csv before the swap judge's were appended (files written then have only these).</summary>
    public static readonly string[] LegacyColumns =
        ["stage", "model", "precision", "params", "macs", "file_bytes", "load_ms", "p50_ms", "p95_ms", "psnr_db", "ssim", "psnr_vs_teacher_db", "id_cosine"];

    /// <summary>The judge's held-in columns of bench.csv, appended to report.csv (the unseen set and copy-target are in the report's judge.csv).</summary>
    public static readonly string[] JudgeColumns =
        ["judge_pairs", "judge_source_rate", "judge_target_rate", "judge_source_dist", "landmark_nme", "source_sensitivity", "hf_ratio", "swaps"];

    public static readonly string[] Columns = [.. LegacyColumns, .. JudgeColumns];

    private static readonly string[] Order = ["teacher", "trained", "pruned", "finetuned", "distilled", "int8-ptq", "int8"];

    /// <summary>
    /// The models no other model beats on both axes (lower cost and higher quality), in order of cost. Models without
    /// both numbers are left out.
    /// </summary>
    public static List<string> ParetoFront(IEnumerable<(string Label, double Cost, double Quality)> points)
    {
        var front = new List<string>();
        double best = double.NegativeInfinity;
        foreach (var (label, _, quality) in points.Where(p => double.IsFinite(p.Cost) && double.IsFinite(p.Quality))
                     .OrderBy(p => p.Cost).ThenByDescending(p => p.Quality))
            if (quality > best) { front.Add(label); best = quality; }
        return front;
    }

    private static void AddFront(ScottPlot.Plot plot, List<string> front, Dictionary<string, (double X, double Y)> at)
    {
        if (front.Count < 2) return;
        var line = plot.Add.Scatter(front.Select(l => at[l].X).ToArray(), front.Select(l => at[l].Y).ToArray());
        line.LegendText = "Pareto front";
        line.LinePattern = ScottPlot.LinePattern.Dashed;
        line.MarkerSize = 0;
    }

    /// <summary>
    /// Plots every `loss_*` term of one training log except the total (each unweighted, smoothed by a 25-step moving
    /// average) into DIR/losses_&lt;stage&gt;.png; returns the file name, or null when no term is ever non-zero.
    /// </summary>
    private static string? WriteTermPlot(string dir, string stageName, string[] lines, List<string> header, int step)
    {
        var rows = lines.Skip(1).Select(l => l.Split(',')).Where(f => f.Length == header.Count).ToList();
        double Value(string[] f, int i) => double.TryParse(f[i], NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : double.NaN;
        var plot = new ScottPlot.Plot();
        int plotted = 0;
        for (int i = 0; i < header.Count; i++)
        {
            if (!header[i].StartsWith("loss_", StringComparison.Ordinal) || header[i] == "loss_total") continue;
            var values = rows.Select(f => (X: Value(f, step), Y: Value(f, i))).Where(p => double.IsFinite(p.X) && double.IsFinite(p.Y)).ToList();
            if (values.Count == 0 || values.All(p => p.Y == 0)) continue;
            const int window = 25;
            var smoothed = values.Select((p, k) => values.Skip(Math.Max(0, k - window + 1)).Take(Math.Min(window, k + 1)).Average(q => q.Y)).ToArray();
            var line = plot.Add.Scatter(values.Select(p => p.X).ToArray(), smoothed);
            line.LegendText = header[i]["loss_".Length..];
            line.MarkerSize = 0;
            plotted++;
        }
        if (plotted == 0) return null;
        var file = $"losses_{stageName}.png";
        plot.Title($"{stageName}: loss terms (unweighted)"); plot.XLabel("step"); plot.YLabel("loss"); plot.ShowLegend(ScottPlot.Edge.Right);
        plot.SavePng(Path.Combine(dir, file), 900, 450);
        return file;
    }

    /// <summary>
    /// Writes report.md, report.csv and the plots to <paramref name="dir"/>; <paramref name="latencyByResolution"/>
    /// (the bench stage's `resolutions`) adds a latency table and a speed-up target line per further input size.
    /// </summary>
    /// <param name="judge">The bench stage's judge rows (copy-target and the models, per pair set): a swap-judge table in
    /// report.md and the report's judge.csv; null or empty leaves them out (report.csv still has the held-in columns).</param>
    public static (string Markdown, string Csv) Write(string dir, string runDir, Recipe recipe, IReadOnlyList<(string Label, BenchRow Row)> unordered,
        IReadOnlyList<ResolutionLatencyRow>? latencyByResolution = null, IReadOnlyList<SwapJudgeRow>? judge = null)
    {
        latencyByResolution ??= [];
        judge ??= [];
        // teacher → pruned → distilled → INT8, then anything else in run order.
        var rows = unordered.OrderBy(r => Array.IndexOf(Order, r.Label.Replace("-fp16", "")) is var i && i >= 0 ? i : Order.Length).ThenBy(r => r.Label.EndsWith("-fp16")).ToList();
        string F(double? v, string f) => v is double d && double.IsFinite(d) ? d.ToString(f, CultureInfo.InvariantCulture) : "";
        var csvPath = Path.Combine(dir, "report.csv");
        AtomicFile.WriteAllLines(csvPath, new[] { string.Join(',', Columns) }.Concat(rows.Select(r => string.Join(',',
            r.Label, r.Row.Model, r.Row.Precision, r.Row.Params, r.Row.Macs, r.Row.FileBytes, F(r.Row.LoadMs, "0.###"), F(r.Row.P50Ms, "0.###"),
            F(r.Row.P95Ms, "0.###"), F(r.Row.PsnrDb, "0.###"), F(r.Row.Ssim, "0.####"), F(r.Row.PsnrVsTeacherDb, "0.###"), F(r.Row.IdCosine, "0.####"),
            r.Row.JudgePairs?.ToString(CultureInfo.InvariantCulture) ?? "", F(r.Row.JudgeSourceRate, "0.####"), F(r.Row.JudgeTargetRate, "0.####"),
            F(r.Row.JudgeSourceDist, "0.####"), F(r.Row.LandmarkNme, "0.#####"), F(r.Row.SourceSensitivity, "0.###"), F(r.Row.HfRatio, "0.####"), r.Row.Swaps ?? ""))));
        // The judge's rows of the models in this report and copy-target, under the same name and columns as the bench's.
        var labelOf = rows.GroupBy(r => r.Row.Model).ToDictionary(g => g.Key, g => g.First().Label);
        var judged = judge.Where(j => j.Model == SwapJudging.CopyTarget || labelOf.ContainsKey(j.Model))
            .OrderBy(j => j.PairSet == SwapJudging.HeldIn ? 0 : 1).ThenBy(j => j.Model == SwapJudging.CopyTarget ? 0 : 1).ToList();
        var judgePath = Path.Combine(dir, BenchReport.JudgeCsv);
        if (judged.Count > 0) CsvAppend.Write(judgePath, judged);
        else
        {
            AtomicFile.RequireRegularOrAbsent(judgePath);
            File.Delete(judgePath);
        }

        // The chart's latency: the interleaved p50 at the recipe's resolution where the bench measured it (sequential
        // p50s drift with whatever else the machine does), else the bench table's.
        var interleaved = latencyByResolution.Where(l => l.Resolution == recipe.Resolution).GroupBy(l => l.Stage).ToDictionary(g => g.Key, g => g.First().P50Ms);
        double Latency(string label, BenchRow row) => interleaved.TryGetValue(label, out var v) ? v : row.P50Ms;
        var pareto = new ScottPlot.Plot();
        foreach (var (label, row) in rows)
        {
            var p = pareto.Add.Scatter(new[] { Latency(label, row) }, new[] { row.PsnrDb });
            p.LegendText = label;
            p.MarkerSize = 10;
        }
        var latencyFront = ParetoFront(rows.Select(r => (r.Label, Latency(r.Label, r.Row), r.Row.PsnrDb)));
        AddFront(pareto, latencyFront, rows.ToDictionary(r => r.Label, r => (Latency(r.Label, r.Row), r.Row.PsnrDb)));
        pareto.Title("quality vs latency"); pareto.XLabel(interleaved.Count > 0 ? "ONNX Runtime p50, batch 1, interleaved rounds (ms)" : "ONNX Runtime p50, batch 1 (ms)"); pareto.YLabel("PSNR (dB)"); pareto.ShowLegend(ScottPlot.Edge.Right); // outside the data: a point may sit in any corner
        pareto.SavePng(Path.Combine(dir, "pareto_latency.png"), 800, 500);
        var size = new ScottPlot.Plot();
        foreach (var (label, row) in rows)
        {
            var p = size.Add.Scatter(new[] { row.FileBytes / 1048576.0 }, new[] { row.PsnrDb });
            p.LegendText = label;
            p.MarkerSize = 10;
        }
        var sizeFront = ParetoFront(rows.Select(r => (r.Label, r.Row.FileBytes / 1048576.0, r.Row.PsnrDb)));
        AddFront(size, sizeFront, rows.ToDictionary(r => r.Label, r => (r.Row.FileBytes / 1048576.0, r.Row.PsnrDb)));
        size.Title("quality vs size"); size.XLabel("file size (MB)"); size.YLabel("PSNR (dB)"); size.ShowLegend(ScottPlot.Edge.Right);
        size.SavePng(Path.Combine(dir, "pareto_size.png"), 800, 500);

        var losses = new ScottPlot.Plot();
        var termPlots = new List<string>();
        foreach (var log in Directory.GetFiles(runDir, "train_log.csv", SearchOption.AllDirectories).Order())
        {
            var lines = File.ReadAllLines(log);
            if (lines.Length < 2) continue;
            var header = lines[0].Split(',').ToList();
            int step = header.IndexOf("step"), total = header.IndexOf("loss_total");
            if (step < 0 || total < 0) continue; // not a training log of this toolkit
            var points = lines.Skip(1).Select(l => l.Split(',')).Where(f => f.Length > total)
                .Select(f => (double.Parse(f[step], CultureInfo.InvariantCulture), double.Parse(f[total], CultureInfo.InvariantCulture))).Where(p => double.IsFinite(p.Item2)).ToList();
            if (points.Count == 0) continue;
            var stageName = Path.GetFileName(Path.GetDirectoryName(log)) ?? log;
            losses.Add.Scatter(points.Select(p => p.Item1).ToArray(), points.Select(p => p.Item2).ToArray()).LegendText = stageName;
            if (WriteTermPlot(dir, stageName, lines, header, step) is { } termPlot) termPlots.Add(termPlot);
        }
        losses.Title("training loss (total)"); losses.XLabel("step"); losses.YLabel("loss"); losses.ShowLegend();
        losses.SavePng(Path.Combine(dir, "losses.png"), 800, 450);

        var md = new StringBuilder();
        md.AppendLine($"# Report: {recipe.Name}{(recipe.Profile is null ? "" : $" (profile {recipe.Profile})")}");
        md.AppendLine();
        if (!string.IsNullOrWhiteSpace(recipe.Note))
        {
            md.AppendLine($"> **{recipe.Note.Trim()}**");
            md.AppendLine();
        }
        md.AppendLine($"Recipe `{recipe.Path}` (hash {recipe.Hash}), resolution {recipe.Resolution}, seed {recipe.Seed}, data `{recipe.Data}`. Quality on the bench split; latency ONNX Runtime CPU, batch 1.");
        md.AppendLine();
        md.AppendLine("| stage | model | precision | params | GMAC | MB | load ms | p50 ms | p95 ms | PSNR dB | SSIM | PSNR vs teacher dB | id cos | judge source rate (held-in) | swaps? |");
        md.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var (label, r) in rows)
            md.AppendLine($"| {label} | {r.Model} | {r.Precision} | {r.Params:N0} | {F(r.Macs / 1e9, "0.000")} | {F(r.FileBytes / 1048576.0, "0.00")} | {F(r.LoadMs, "0.0")} | {F(r.P50Ms, "0.00")} | {F(r.P95Ms, "0.00")} | {F(r.PsnrDb, "0.00")} | {F(r.Ssim, "0.000")} | {F(r.PsnrVsTeacherDb, "0.00")} | {F(r.IdCosine, "0.000")} | {F(r.JudgeSourceRate, "0.000")} | {BenchReport.SwapsCell(r.Swaps)} |");
        md.AppendLine();
        if (judged.Count > 0)
        {
            md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"Swap judge (face-api.js's FaceRecognitionNet, used in no loss; crop path, the bench split) for every stage beside the copy-target baseline (output := target). A stage is flagged **does not swap** when its judge source rate is within {SwapJudging.SwapMargin} of copy-target's on the same pair set. held_in: the training identities' faces, both directions; unseen: still-photo identities outside train as sources. Rows in `{BenchReport.JudgeCsv}`."));
            md.AppendLine();
            md.AppendLine("| stage | model | pair set | pairs | judge source rate | judge target rate | judge source dist | landmark NME | source sensitivity | HF ratio | swaps? |");
            md.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|");
            foreach (var j in judged)
                md.AppendLine($"| {(j.Model == SwapJudging.CopyTarget ? SwapJudging.CopyTarget : labelOf[j.Model])} | {j.Model} | {j.PairSet} | {j.Pairs} | {F(j.JudgeSourceRate, "0.000")} | {F(j.JudgeTargetRate, "0.000")} | {F(j.JudgeSourceDist, "0.000")} | {F(j.LandmarkNme, "0.0000")} | {F(j.SourceSensitivity, "0.00")} | {F(j.HfRatio, "0.000")} | {BenchReport.SwapsCell(j.Swaps)} |");
            md.AppendLine();
        }
        foreach (var line in Targets(rows, latencyByResolution, recipe.EffectiveTargets)) md.AppendLine(line);
        if (latencyByResolution.Count > 0)
        {
            int repeats = latencyByResolution.Max(l => l.Repeats ?? 1);
            md.AppendLine("Latency in interleaved rounds (one run of each model per round, batch 1; at other sizes than the recipe's every model is re-exported at that size)" +
                (repeats > 1 ? $", in {repeats} repeats: p50/p90 pool every run, the speed-up is the median of the repeats' ratios with their range:" : ":"));
            md.AppendLine();
            md.AppendLine("| px | stage | precision | p50 ms | p90 ms | teacher p50 / p50 |");
            md.AppendLine("|---|---|---|---|---|---|");
            foreach (var l in latencyByResolution)
            {
                string range = l.SpeedupMin is double lo && l.SpeedupMax is double hi && l.Stage != "teacher" ? string.Create(CultureInfo.InvariantCulture, $" ({lo:0.00}–{hi:0.00})") : "";
                md.AppendLine($"| {l.Resolution} | {l.Stage} | {l.Precision} | {F(l.P50Ms, "0.00")} | {F(l.P90Ms, "0.00")} | {F(l.SpeedupVsTeacher, "0.00")}{(l.SpeedupVsTeacher is null ? "" : "×")}{range} |");
            }
            md.AppendLine();
        }
        md.AppendLine("![quality vs latency](pareto_latency.png) ![quality vs size](pareto_size.png)");
        md.AppendLine();
        md.AppendLine($"Pareto-optimal (no other model both faster and better in PSNR): {string.Join(", ", latencyFront)}; by file size: {string.Join(", ", sizeFront)}.");
        md.AppendLine();
        md.AppendLine("![losses](losses.png)");
        if (termPlots.Count > 0)
        {
            md.AppendLine();
            md.AppendLine("Each loss term, unweighted, per training stage (terms that stayed 0 left out; a 25-step moving average):");
            md.AppendLine();
            md.AppendLine(string.Join(" ", termPlots.Select(p => $"![{Path.GetFileNameWithoutExtension(p)}]({p})")));
        }
        // The stages' plots and last sample grids are copied beside the report (named <stage>_<file>), so the report
        // folder stands alone wherever it is copied (e.g. committed under docs/).
        var fullDir = Path.GetFullPath(dir);
        bool Outside(string f) => !Path.GetFullPath(f).StartsWith(fullDir + Path.DirectorySeparatorChar, StringComparison.Ordinal);
        string Local(string png)
        {
            var stage = Path.GetRelativePath(runDir, png).Split(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar)[0];
            var name = $"{stage}_{Path.GetFileName(png)}";
            AtomicFile.WriteAllBytes(Path.Combine(dir, name), File.ReadAllBytes(png));
            return name;
        }
        foreach (var png in Directory.GetFiles(runDir, "sensitivity.png", SearchOption.AllDirectories).Concat(Directory.GetFiles(runDir, "prune_psnr_vs_macs.png", SearchOption.AllDirectories)).Where(Outside).Order(StringComparer.Ordinal))
            md.AppendLine($"\n![{Path.GetFileNameWithoutExtension(png)}]({Local(png)})");
        var samples = Directory.GetFiles(runDir, "step-*.png", SearchOption.AllDirectories).Where(Outside).GroupBy(f => Path.GetDirectoryName(Path.GetDirectoryName(f))).Select(g => g.Max()!).Order(StringComparer.Ordinal);
        foreach (var s in samples) md.AppendLine($"\n![samples]({Local(s)})");
        var mdPath = Path.Combine(dir, "report.md");
        AtomicFile.WriteAllText(mdPath, md.ToString());
        return (mdPath, csvPath);
    }

    /// <summary>
    /// The recipe's targets (by default the closed loop's: file ≤ 10 %, p50 speed-up ≥ 5×, PSNR drop ≤ 1.0 dB,
    /// identity-cosine drop ≤ 0.02), teacher FP32 against the final INT8 model, each with its value and whether it is met.
    /// </summary>
    public static List<string> Targets(IReadOnlyList<(string Label, BenchRow Row)> rows, IReadOnlyList<ResolutionLatencyRow>? latencyByResolution = null, ReportTargets? targets = null)
    {
        var t = targets ?? new ReportTargets();
        var teacher = rows.FirstOrDefault(r => r.Label == "teacher").Row;
        var int8 = rows.LastOrDefault(r => r.Label == "int8").Row ?? rows.LastOrDefault(r => r.Row.Precision == "int8").Row;
        if (teacher is null || int8 is null) return [];
        string Mark(bool ok) => ok ? "met" : "**not met**";
        string N(double v) => v.ToString("0.###", CultureInfo.InvariantCulture);
        double size = (double)int8.FileBytes / Math.Max(1, teacher.FileBytes);
        double speedup = teacher.P50Ms / Math.Max(1e-9, int8.P50Ms);
        double psnrDrop = teacher.PsnrDb - int8.PsnrDb;
        double idDrop = teacher.IdCosine - int8.IdCosine;
        var int8Label = rows.Last(r => r.Row == int8).Label;
        var interleaved = (latencyByResolution ?? []).Where(l => l.Stage == int8Label && l.SpeedupVsTeacher is not null).OrderBy(l => l.Resolution).ToList();
        return
        [
            $"Targets, teacher FP32 → {int8.Model} (INT8), on this run's bench:",
            "",
            string.Create(CultureInfo.InvariantCulture, $"- file size {size:P1} of the teacher's (target ≤ {t.FileFraction * 100:0.##} %): {Mark(size <= t.FileFraction)}"),
            .. interleaved.Any(l => l.Resolution == int8.Resolution) ? Array.Empty<string>()
                : [string.Create(CultureInfo.InvariantCulture, $"- p50 speed-up {speedup:0.00}× at {int8.Resolution} px (target ≥ {N(t.Speedup)}×): {Mark(speedup >= t.Speedup)}")],
            .. interleaved.Select(l => string.Create(CultureInfo.InvariantCulture,
                $"- p50 speed-up {l.SpeedupVsTeacher:0.00}× at {l.Resolution} px, interleaved timing{(l.Repeats > 1 ? $" ({l.Repeats} repeats: {l.SpeedupMin:0.00}–{l.SpeedupMax:0.00}×)" : "")}{(l.Resolution == int8.Resolution ? $" (bench table: {speedup:0.00}×)" : "")} (target ≥ {N(t.Speedup)}×): {Mark(l.SpeedupVsTeacher >= t.Speedup)}{(l.Repeats > 1 && (l.SpeedupMin < t.Speedup) != (l.SpeedupMax < t.Speedup) ? " — within the spread of the repeats, so not a firm result" : "")}")),
            string.Create(CultureInfo.InvariantCulture, $"- PSNR drop {psnrDrop:0.00} dB (target ≤ {t.MaxPsnrDropDb:0.0##} dB): {Mark(psnrDrop <= t.MaxPsnrDropDb)}"),
            string.Create(CultureInfo.InvariantCulture, $"- identity-cosine drop {idDrop:0.000} (target ≤ {t.MaxIdDrop:0.00#}): {Mark(idDrop <= t.MaxIdDrop)}"),
            "",
        ];
    }
}
