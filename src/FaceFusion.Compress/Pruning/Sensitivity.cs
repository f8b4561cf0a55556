using FaceFusion.Compress.Assets;
using FaceFusion.Compress.Data;
using FaceFusion.Compress.Models.Architectures;
using FaceFusion.Compress.Models.Graph;
using FaceFusion.Compress.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Pruning;

/// <summary>One row of `sensitivity.csv`.</summary>
public sealed record SensitivityRow(int Group, string Producer, double Ratio, int ChannelsRemoved, long Macs, double PsnrDb, double PsnrDropDb);

/// <summary>
/// Per-group sensitivity: each prunable group alone loses 10 %…90 % of its channels (least important first, no
/// fine-tuning); `val` PSNR and MACs are measured. From the table, <see cref="Allocate"/> picks per-group ratios
/// that meet a MAC budget at the smallest summed PSNR drop.
/// </summary>
public static class Sensitivity
{
    public static readonly string[] Columns = ["group", "ratio", "channels_removed", "macs", "psnr_db", "psnr_drop_db"];

    public static List<SensitivityRow> Measure(GraphModule model, IReadOnlyDictionary<int, double[]> importance, string dataDir, IReadOnlyList<double> ratios,
        int evalPairs = 32, int minChannels = 1, IReadOnlySet<string>? skip = null, IProgress<string>? progress = null, int seed = 1)
    {
        int r = model.Graph.Resolution;
        var analysis = new ChannelAnalysis(model.Graph);
        using var val = new FaceSwapData(dataDir, Splits.Val, r);
        var (targets, _) = SwapTrainer.EvaluationPairs(val, evalPairs, seed);
        model.eval();
        double baseline = IterativePruner.ValPsnr(model, val, targets);
        var rows = new List<SensitivityRow>();
        foreach (var group in analysis.Groups.Where(g => g.Prunable && importance.ContainsKey(g.Id)))
        {
            if (skip is not null && group.Producers.Concat(group.Members).Any(n => skip.Contains(n.Split('.')[0]))) continue;
            var order = importance[group.Id].Select((v, i) => (v, i)).OrderBy(p => p.v).Select(p => p.i).ToArray();
            foreach (var ratio in ratios)
            {
                int count = Math.Min(group.Size - Math.Max(1, minChannels), (int)Math.Round(ratio * group.Size));
                if (count <= 0) continue;
                progress?.Report($"group {group.Id} ({group.Producers[0]}) ratio {ratio:0.0}");
                using var pruned = Pruner.Prune(model, new Dictionary<int, int[]> { [group.Id] = order.Take(count).ToArray() }, analysis);
                pruned.eval();
                double psnr = IterativePruner.ValPsnr(pruned, val, targets);
                rows.Add(new SensitivityRow(group.Id, group.Producers[0], ratio, count, ModelSummary.Of(pruned.Graph, r).Macs, psnr, baseline - psnr));
            }
        }
        return rows;
    }

    /// <summary>
    /// Greedy allocation: starting from nothing pruned, repeatedly raises the ratio of the group whose next ratio
    /// saves the most MACs per dB of extra PSNR drop, until total MACs ≤ <paramref name="macBudget"/>. Returns group → ratio.
    /// </summary>
    public static Dictionary<int, double> Allocate(IReadOnlyList<SensitivityRow> rows, long originalMacs, long macBudget)
    {
        var byGroup = rows.GroupBy(r => r.Group).ToDictionary(g => g.Key, g => g.OrderBy(r => r.Ratio).ToList());
        var level = byGroup.Keys.ToDictionary(g => g, _ => -1);
        long Saved(int g) => level[g] < 0 ? 0 : originalMacs - byGroup[g][level[g]].Macs;
        double Drop(int g) => level[g] < 0 ? 0 : Math.Max(0, byGroup[g][level[g]].PsnrDropDb);
        long macs = originalMacs;
        while (macs > macBudget)
        {
            int best = -1;
            double bestScore = double.NegativeInfinity;
            foreach (var g in byGroup.Keys.Where(g => level[g] + 1 < byGroup[g].Count))
            {
                var next = byGroup[g][level[g] + 1];
                double gain = originalMacs - next.Macs - Saved(g);
                double cost = Math.Max(0, next.PsnrDropDb) - Drop(g);
                double score = gain / (Math.Max(cost, 0) + 1e-3);
                if (gain > 0 && score > bestScore) { bestScore = score; best = g; }
            }
            if (best < 0) break;
            macs -= originalMacs - byGroup[best][level[best] + 1].Macs - Saved(best);
            level[best]++;
        }
        return level.Where(kv => kv.Value >= 0).ToDictionary(kv => kv.Key, kv => byGroup[kv.Key][kv.Value].Ratio);
    }

    /// <summary>Writes `sensitivity.csv` (<see cref="Columns"/>) and `sensitivity.png` (PSNR drop vs ratio, one line per group) into <paramref name="dir"/>.</summary>
    public static string WriteOutputs(string dir, IReadOnlyList<SensitivityRow> rows, string title)
    {
        Directory.CreateDirectory(dir);
        var csv = Path.Combine(dir, "sensitivity.csv");
        AtomicFile.WriteAllLines(csv, new[] { string.Join(',', Columns) }.Concat(rows.Select(r =>
            string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{r.Group},{r.Ratio:0.###},{r.ChannelsRemoved},{r.Macs},{r.PsnrDb:0.###},{r.PsnrDropDb:0.###}"))));
        var plot = new ScottPlot.Plot();
        foreach (var g in rows.GroupBy(r => r.Group))
            plot.Add.Scatter(g.Select(r => r.Ratio).ToArray(), g.Select(r => r.PsnrDropDb).ToArray()).LegendText = $"{g.Key}: {g.First().Producer}";
        plot.Title(title);
        plot.XLabel("fraction of the group's channels removed");
        plot.YLabel("PSNR drop (dB)");
        plot.ShowLegend();
        plot.SavePng(Path.Combine(dir, "sensitivity.png"), 1000, 650);
        return csv;
    }
}
