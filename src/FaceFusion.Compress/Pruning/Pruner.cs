using FaceFusion.Compress.Models.Graph;
using TorchSharp;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Pruning;

/// <summary>
/// Physical structured pruning: removes channels of groups from a graph and its weights, giving a genuinely smaller
/// network (new graph JSON with smaller channel counts, weights sliced from the original).
/// </summary>
public static class Pruner
{
    /// <summary>
    /// Removes <paramref name="removal"/> (group id → channel indices) from <paramref name="model"/>; returns a new
    /// module (the caller disposes it) in the same train/eval mode. Groups must be prunable and keep ≥ 1 channel.
    /// </summary>
    public static GraphModule Prune(GraphModule model, IReadOnlyDictionary<int, int[]> removal, ChannelAnalysis? analysis = null)
    {
        analysis ??= new ChannelAnalysis(model.Graph);
        foreach (var (group, channels) in removal)
        {
            var g = analysis.Group(group);
            if (!g.Prunable) throw new InvalidOperationException($"group {group} ({string.Join(", ", g.Producers)}) cannot be pruned: {g.Reason}");
            if (channels.Distinct().Count() >= g.Size) throw new InvalidOperationException($"group {group} ({string.Join(", ", g.Producers)}) would lose all {g.Size} channels");
            if (channels.Any(c => c < 0 || c >= g.Size)) throw new ArgumentException($"group {group}: channel index out of range 0..{g.Size - 1}");
        }
        var removed = removal.SelectMany(kv => kv.Value.Select(c => new ChannelRef(analysis.Group(kv.Key).Id, c))).ToHashSet();
        var graph = PrunedGraph(model.Graph, removal, analysis);

        var state = model.state_dict();
        var sliced = new Dictionary<string, Tensor>();
        using (no_grad())
        {
            foreach (var (key, value) in state)
            {
                var t = value.detach();
                foreach (var dim in analysis.Dims.Where(d => d.Key == key))
                {
                    var keep = Enumerable.Range(0, dim.Map.Length).Where(i => !removed.Contains(dim.Map[i])).Select(i => (long)i).ToArray();
                    if (keep.Length != dim.Map.Length) t = t.index_select(dim.Dim, tensor(keep));
                }
                sliced[key] = t;
            }
        }
        var pruned = new GraphModule(graph);
        using (no_grad())
            foreach (var (key, target) in pruned.state_dict())
            {
                if (!sliced[key].shape.SequenceEqual(target.shape))
                    throw new InvalidOperationException($"pruning '{key}': sliced to [{string.Join(",", sliced[key].shape)}], the pruned graph needs [{string.Join(",", target.shape)}]");
                target.copy_(sliced[key]);
            }
        if (model.training) pruned.train(); else pruned.eval();
        return pruned;
    }

    /// <summary>
    /// The graph after <paramref name="removal"/> (group id → channel indices), without weights: for costing a removal
    /// (e.g. the MACs it saves) before doing it. Validated.
    /// </summary>
    public static NetworkGraph PrunedGraph(NetworkGraph graph, IReadOnlyDictionary<int, int[]> removal, ChannelAnalysis analysis)
    {
        var removed = removal.SelectMany(kv => kv.Value.Select(c => new ChannelRef(analysis.Group(kv.Key).Id, c))).ToHashSet();
        int Kept(ChannelRef[] map) => map.Count(c => !removed.Contains(c));
        var nodes = graph.Nodes.Select(node => node.Op switch
        {
            Ops.Conv when !node.Depthwise => node with { Channels = Kept(analysis.MapOf(node.Name)) },
            Ops.Linear => node with { Channels = Kept(analysis.MapOf(node.Name)) },
            Ops.AttentionFusion => node with
            {
                InnerChannels = Kept(analysis.Dims.First(d => d.Key == $"{node.Name}.query.bias").Map),
                AttentionScale = (float)node.EffectiveAttentionScale, // the function keeps its original scale
            },
            _ => node,
        }).ToList();
        var pruned = graph with { Nodes = nodes };
        pruned.Validate($"{graph.Name} (pruned)");
        return pruned;
    }

    /// <summary>
    /// The unpruned network's equivalent of a removal: a copy of the weights in which every consumer weight that
    /// reads a removed channel is zero (the reference the pruned network must match). Modifies <paramref name="model"/>.
    /// </summary>
    public static void ZeroConsumers(GraphModule model, IReadOnlyDictionary<int, int[]> removal, ChannelAnalysis? analysis = null)
    {
        analysis ??= new ChannelAnalysis(model.Graph);
        var removed = removal.SelectMany(kv => kv.Value.Select(c => new ChannelRef(analysis.Group(kv.Key).Id, c))).ToHashSet();
        var state = model.state_dict();
        using (no_grad())
            foreach (var dim in analysis.Dims.Where(d => d.Consumer))
            {
                var zero = Enumerable.Range(0, dim.Map.Length).Where(i => removed.Contains(dim.Map[i])).Select(i => (long)i).ToArray();
                if (zero.Length > 0) state[dim.Key].index_fill_(dim.Dim, tensor(zero), 0);
            }
    }
}
