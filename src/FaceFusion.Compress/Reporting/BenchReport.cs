using FaceFusion.Compress.Assets;
using System.Globalization;
using System.Text;
using CsvHelper;
using FaceFusion.Compress.Judging;

namespace FaceFusion.Compress.Reporting;

/// <summary>Writes bench.csv, slices.csv, the plots and bench.md into a bench folder.</summary>
public static class BenchReport
{
    public const string ThroughputCsv = "throughput.csv";
    public const string BenchCsv = "bench.csv", SlicesCsv = "slices.csv", BenchMarkdown = "bench.md", QualityPlot = "quality_vs_latency.png";
    /// <summary>The judge's rows of every bench (model and copy-target, held-in and unseen), as `ffc benchmark swap-judge` writes them.</summary>
    public const string JudgeCsv = "judge.csv";

    public static string LatencyPlot(string model) => $"latency_{model}.png";

    /// <summary>Appends the result and regenerates the plots and the summary from every row so far.</summary>
    public static List<BenchRow> Write(string dir, BenchResult result)
    {
        Directory.CreateDirectory(dir);
        CsvAppend.Append(Path.Combine(dir, BenchCsv), [result.Row]);
        CsvAppend.Append(Path.Combine(dir, SlicesCsv), result.Slices);
        if (result.Throughput.Count > 0) CsvAppend.Append(Path.Combine(dir, ThroughputCsv), result.Throughput);
        if (result.Judge.Count > 0) CsvAppend.Append(Path.Combine(dir, JudgeCsv), result.Judge);
        List<BenchRow> rows;
        using (var reader = CsvReader.FromFile(Path.Combine(dir, BenchCsv))) rows = reader.GetRecords<BenchRow>().ToList();

        var latency = new ScottPlot.Plot();
        var values = result.LatenciesMs.ToArray();
        double min = values.Min(), max = values.Max();
        int bins = 20;
        double width = Math.Max((max - min) / bins, 1e-3);
        var counts = new double[bins];
        foreach (var v in values) counts[Math.Min(bins - 1, (int)((v - min) / width))]++;
        var bars = latency.Add.Bars(Enumerable.Range(0, bins).Select(i => min + (i + 0.5) * width).ToArray(), counts);
        foreach (var bar in bars.Bars) bar.Size = width * 0.9;
        latency.Title($"{result.Row.Model}: batch-1 latency over {values.Length} runs");
        latency.XLabel("ms");
        latency.YLabel("runs");
        latency.SavePng(Path.Combine(dir, LatencyPlot(result.Row.Model)), 800, 450);

        var scatter = new ScottPlot.Plot();
        foreach (var row in rows.GroupBy(r => r.Model).Select(g => g.Last()).Where(r => double.IsFinite(r.PsnrDb)))
        {
            var point = scatter.Add.Scatter(new[] { row.P50Ms }, new[] { row.PsnrDb });
            point.LegendText = $"{row.Model} ({row.Precision})";
            point.MarkerSize = 10;
            scatter.Add.Text($"{row.Model}", row.P50Ms, row.PsnrDb);
        }
        scatter.Title("quality vs latency (latest row per model)");
        scatter.XLabel("p50 latency, batch 1 (ms)");
        scatter.YLabel("same-identity reconstruction PSNR (dB)");
        scatter.ShowLegend();
        scatter.SavePng(Path.Combine(dir, QualityPlot), 800, 500);

        AtomicFile.WriteAllText(Path.Combine(dir, BenchMarkdown), Markdown(rows, result));
        return rows;
    }

    private static string Markdown(List<BenchRow> rows, BenchResult latest)
    {
        string F(double? v, string format) => v is double d && double.IsFinite(d) ? d.ToString(format, CultureInfo.InvariantCulture) : "—";
        var md = new StringBuilder();
        md.AppendLine("# Benchmark");
        md.AppendLine();
        md.AppendLine($"ONNX Runtime, {latest.Row.Provider}, {latest.Row.Threads} intra-op threads, graph optimisation {latest.Row.GraphOptimization}, telemetry off. Latest row per model:");
        md.AppendLine();
        md.AppendLine("| model | precision | R | params | GMAC | MB | load ms | p50 ms | TorchSharp p50 ms | p99 ms | fps | batch-8 fps | parity dB | PSNR dB | SSIM | id cos | perceptual | vs teacher dB | GMAC/s (peak) | judge source rate (held-in) | swaps? |");
        md.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var r in rows.GroupBy(r => r.Model).Select(g => g.Last()))
            md.AppendLine($"| {r.Model} | {r.Precision} | {r.Resolution} | {r.Params:N0} | {F(r.Macs / 1e9, "0.000")} | {F(r.FileBytes / 1048576.0, "0.00")} | {F(r.LoadMs, "0.0")} | {F(r.P50Ms, "0.00")} | {F(r.TorchP50Ms, "0.00")} | {F(r.P99Ms, "0.00")} | {F(r.Fps, "0.0")} | {F(r.Batch8Fps, "0.0")} | {F(r.ParityPsnrDb, "0.0")} | {F(r.PsnrDb, "0.00")} | {F(r.Ssim, "0.000")} | {F(r.IdCosine, "0.000")} | {F(r.PerceptualDistance, "0.000")} | {F(r.PsnrVsTeacherDb, "0.00")} | {F(r.AchievedGmacs, "0.0")} ({F(r.MachinePeakGmacs, "0")}) | {F(r.JudgeSourceRate, "0.000")} | {SwapsCell(r.Swaps)} |");
        md.AppendLine();
        md.AppendLine($"Swap judge of `{latest.Row.Model}` against the copy-target baseline ({latest.Row.Split} split, crop path; every bench's rows are in {JudgeCsv}):");
        md.AppendLine();
        md.Append(latest.Judge.Count > 0 ? SwapJudging.Markdown(latest.Judge) : "No pair set could be formed.\n");
        foreach (var note in latest.JudgeNotes) md.AppendLine($"- not measured: {note}");
        md.AppendLine();
        md.AppendLine($"Slices of `{latest.Row.Model}` ({latest.Row.Split} split):");
        md.AppendLine();
        md.AppendLine("| slice | count | PSNR dB | SSIM | id cos |");
        md.AppendLine("|---|---|---|---|---|");
        foreach (var s in latest.Slices) md.AppendLine($"| {s.Slice} | {s.Count} | {F(s.PsnrDb, "0.00")} | {F(s.Ssim, "0.000")} | {F(s.IdCosine, "0.000")} |");
        md.AppendLine();
        md.AppendLine($"![latency]({LatencyPlot(latest.Row.Model)})");
        md.AppendLine();
        md.AppendLine($"![quality vs latency]({QualityPlot})");
        md.AppendLine();
        md.AppendLine($"Swap judge: face-api.js's FaceRecognitionNet, used in no loss. held_in: the training identities' faces of the split, targets ↔ sources, both directions; unseen: still-photo identities outside train as sources. judge source/target rate: share of swaps it calls the source's / the target's person (distance < {IdentityJudge.SameThreshold.ToString(CultureInfo.InvariantCulture)} and closer than to the other); landmark NME: 68 points, output vs target, over the inter-ocular distance; source sensitivity: grey levels the face region changes when the source is another identity's; HF ratio: Laplacian variance of the output's face region over the target's. A model is flagged **does not swap** when its judge source rate is within {SwapJudging.SwapMargin.ToString(CultureInfo.InvariantCulture)} of copy-target's (output := target).");
        md.AppendLine();
        md.AppendLine("PSNR/SSIM: same-identity reconstructions against the input crop. id cos: cross-identity swaps, embedded by the identity network in ONNX Runtime, against the source embedding. perceptual: mean distance of unit-normalised ResNet18 stage features (LPIPS-like, without LPIPS's learned weights). Slices: profile (|yaw| > 25° from landmarks), low light (intensities × 0.35), occlusion (grey box over mouth and chin), unseen identities (still photos, never in train).");
        return md.ToString();
    }

    /// <summary>The `swaps` flag as a table cell: "no" is spelled out.</summary>
    public static string SwapsCell(string? swaps) => swaps == "no" ? "**does not swap**" : swaps ?? "";
}
