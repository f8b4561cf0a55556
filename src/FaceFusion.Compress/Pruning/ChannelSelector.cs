using FaceFusion.Compress.Models.Graph;

namespace FaceFusion.Compress.Pruning;

/// <summary>Options of one pruning step's channel choice.</summary>
public sealed record SelectionOptions
{
    /// <summary>At most this fraction of the remaining prunable channels is removed per step.</summary>
    public double StepFraction { get; init; } = 0.10;
    /// <summary>No group goes below this many channels.</summary>
    public int MinChannels { get; init; } = 8;
    /// <summary>
    /// Channel granularity: a group at least this large loses channels in blocks that keep its size a multiple of it
    /// (x86 CPU kernels block channels by 8 with AVX2, 16 with AVX-512; a 16-channel stem cut to 15 made the pruned
    /// student slower than the unpruned one). Smaller groups lose single channels. 1: single channels everywhere.
    /// </summary>
    public int ChannelMultiple { get; init; } = 8;
    /// <summary>
    /// Rank candidates by normalised importance per MAC saved instead of importance alone: each group's importance is
    /// divided by the MACs one of its channels costs at the graph's resolution, relative to the groups' mean, so
    /// channels at high resolution go first at equal importance. Aimed at latency: at small channel counts the time
    /// sits in the full-resolution layers, which plain ranking spreads no more pruning to than any other.
    /// </summary>
    public bool MacAware { get; init; }
    /// <summary>Groups whose producers or members include any of these node names are left alone.</summary>
    public IReadOnlySet<string> Skip { get; init; } = new HashSet<string>();
}

/// <summary>
/// Chooses which channels one pruning step removes. Importance is normalised per group (divided by the group's
/// mean) so groups compare fairly; removal then proceeds by candidates in increasing normalised importance: for a
/// group of at least <see cref="SelectionOptions.ChannelMultiple"/> (8) channels a candidate is its 8 least important
/// channels (so sizes stay multiples of 8, which CPU kernels need to stay fast; the first block of a group whose size
/// is not a multiple of 8 is the remainder), for smaller groups single channels, never below
/// <see cref="SelectionOptions.MinChannels"/>. The step stops at its budget.
/// </summary>
public static class ChannelSelector
{
    public static Dictionary<int, int[]> Select(ChannelAnalysis analysis, IReadOnlyDictionary<int, double[]> importance, SelectionOptions options)
    {
        var groups = analysis.Groups.Where(g => g.Prunable && importance.ContainsKey(g.Id)
            && !g.Producers.Concat(g.Members).Any(n => options.Skip.Contains(n.Split('.')[0]))).ToList();
        int total = analysis.Groups.Where(g => g.Prunable).Sum(g => g.Size);
        int budget = (int)Math.Floor(options.StepFraction * total);
        var cost = options.MacAware ? MacsPerChannel(analysis, groups) : null;
        double meanCost = cost is { Count: > 0 } ? cost.Values.Average() : 1;
        var order = groups.ToDictionary(g => g.Id, g =>
        {
            double mean = importance[g.Id].Average();
            double weight = cost is null ? 1 : Math.Max(cost.GetValueOrDefault(g.Id, meanCost), 1e-12) / meanCost;
            return importance[g.Id].Select((v, i) => (Index: i, Score: v / (mean + 1e-12) / weight)).OrderBy(p => p.Score).ToList();
        });
        var removed = groups.ToDictionary(g => g.Id, _ => 0);
        int used = 0;
        while (true)
        {
            (int Group, int Count, double Score)? best = null;
            foreach (var g in groups)
            {
                int size = g.Size - removed[g.Id];
                int multiple = Math.Max(1, options.ChannelMultiple);
                int count = size >= multiple ? (size % multiple == 0 ? multiple : size % multiple) : 1;
                if (count == 0 || size - count < options.MinChannels || used + count > budget) continue;
                double score = order[g.Id].Skip(removed[g.Id]).Take(count).Average(p => p.Score);
                if (best is null || score < best.Value.Score) best = (g.Id, count, score);
            }
            if (best is null) break;
            removed[best.Value.Group] += best.Value.Count;
            used += best.Value.Count;
        }
        return removed.Where(kv => kv.Value > 0)
            .ToDictionary(kv => kv.Key, kv => order[kv.Key].Take(kv.Value).Select(p => p.Index).Order().ToArray());
    }

    /// <summary>MACs saved per channel of each group: the whole graph's MACs less those with one of its channels removed.</summary>
    public static Dictionary<int, double> MacsPerChannel(ChannelAnalysis analysis, IEnumerable<ChannelGroup> groups)
    {
        var graph = analysis.Graph;
        int resolution = graph.Resolution > 0 ? graph.Resolution : throw new InvalidOperationException($"graph '{graph.Name}' has no resolution: MAC-aware selection cannot cost its channels");
        long total = ModelSummary.Of(graph, resolution).Macs;
        return groups.Where(g => g.Size > 1).ToDictionary(g => g.Id,
            g => (double)(total - ModelSummary.Of(Pruner.PrunedGraph(graph, new Dictionary<int, int[]> { [g.Id] = [0] }, analysis), resolution).Macs));
    }
}
