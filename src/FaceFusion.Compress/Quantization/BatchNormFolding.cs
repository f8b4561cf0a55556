using FaceFusion.Compress.Models.Graph;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Quantization;

/// <summary>
/// Folds each BatchNorm that is the only reader of a conv into that conv: w' = w·γ/√(σ²+ε), b' = (b − μ)·γ/√(σ²+ε) + β,
/// using the running statistics. The result is a new graph without those BatchNorm nodes (their readers read the conv)
/// whose eval-mode outputs equal the original's; quantization-aware training then sees exactly the weights the INT8
/// export quantizes. Folding freezes the statistics, so it is done once, before QAT.
/// </summary>
public static class BatchNormFolding
{
    /// <summary>BatchNorm node → the conv it folds into.</summary>
    public static Dictionary<string, string> Foldable(NetworkGraph graph)
    {
        var readers = graph.Nodes.SelectMany(n => n.Inputs.Select(i => (Input: i, Node: n))).ToLookup(p => p.Input, p => p.Node);
        var outputs = graph.Outputs.Select(o => o.Node).ToHashSet();
        var result = new Dictionary<string, string>();
        foreach (var bn in graph.Nodes.Where(n => n.Op == Ops.BatchNorm))
        {
            var source = graph.Nodes.FirstOrDefault(n => n.Name == bn.Inputs[0]);
            if (source?.Op == Ops.Conv && readers[source.Name].Count() == 1 && !outputs.Contains(source.Name))
                result[bn.Name] = source.Name;
        }
        return result;
    }

    /// <summary>
    /// A new module with every foldable BatchNorm folded (eval-mode outputs unchanged up to float rounding). Graph
    /// outputs and readers of a folded BatchNorm now name its conv. <paramref name="model"/> is not changed; the
    /// caller disposes the result.
    /// </summary>
    public static GraphModule Fold(GraphModule model)
    {
        var graph = model.Graph;
        var folds = Foldable(graph);
        string Rename(string value) => folds.TryGetValue(value, out var conv) ? conv : value;
        var nodes = graph.Nodes.Where(n => !folds.ContainsKey(n.Name))
            .Select(n => n with
            {
                Inputs = n.Inputs.Select(Rename).ToList(),
                Bias = n.Bias || (n.Op == Ops.Conv && folds.ContainsValue(n.Name)),
            }).ToList();
        var folded = graph with
        {
            Nodes = nodes,
            Outputs = graph.Outputs.Select(o => o with { Node = Rename(o.Node) }).ToList(),
            Metadata = new Dictionary<string, string>(graph.Metadata) { ["batchnorm_folded"] = folds.Count.ToString() },
        };
        var result = new GraphModule(folded);
        try
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var source = model.state_dict();
            var target = result.state_dict();
            foreach (var (key, value) in target)
                if (source.TryGetValue(key, out var s) && s.shape.SequenceEqual(value.shape)) value.copy_(s);
            foreach (var (bnName, convName) in folds)
            {
                var bn = (BatchNorm2d)model.NodeModule(bnName);
                var conv = (Conv2d)result.NodeModule(convName);
                var original = (Conv2d)model.NodeModule(convName);
                var factor = bn.weight!.div(bn.running_var!.add(bn.eps).sqrt());
                conv.weight!.copy_(original.weight!.mul(factor.reshape(-1, 1, 1, 1)));
                var bias = original.bias is null ? zeros_like(bn.running_mean!) : original.bias;
                conv.bias!.copy_(bias.sub(bn.running_mean!).mul(factor).add(bn.bias!));
            }
        }
        catch
        {
            result.Dispose();
            throw;
        }
        if (model.training) result.train(); else result.eval();
        return result;
    }
}
