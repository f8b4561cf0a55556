using FaceFusion.Compress.Models.Graph;
using TorchSharp;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Pruning;

/// <summary>How channel importance is measured.</summary>
public enum ImportanceCriterion
{
    /// <summary>First-order Taylor: |Σ over the group's weights of w·∂L/∂w| per channel, averaged over batches.</summary>
    Taylor,
    /// <summary>Σ|w| of the producing weights (L1 magnitude).</summary>
    L1,
    /// <summary>√Σw² of the producing weights (L2 magnitude).</summary>
    L2,
    /// <summary>|γ| of the first BatchNorm that follows the channel.</summary>
    BnScale,
    /// <summary>Uniformly random (seeded): the baseline that shows what a criterion buys.</summary>
    Random,
}

/// <summary>Per-channel importance of every prunable group.</summary>
public static class Importance
{
    /// <summary>
    /// Computes importance per prunable group (group id → one value per channel). For <see cref="ImportanceCriterion.Taylor"/>,
    /// <paramref name="loss"/> is called once per batch (batch index) and must return a scalar loss of
    /// <paramref name="model"/>'s parameters; gradients are cleared afterwards.
    /// </summary>
    public static Dictionary<int, double[]> Compute(GraphModule model, ChannelAnalysis analysis, ImportanceCriterion criterion,
        Func<int, Tensor>? loss = null, int batches = 4, int seed = 0)
    {
        var groups = analysis.Groups.Where(g => g.Prunable).ToList();
        var result = groups.ToDictionary(g => g.Id, g => new double[g.Size]);
        var state = model.state_dict();
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        switch (criterion)
        {
            case ImportanceCriterion.Random:
            {
                var rng = new Random(seed);
                foreach (var g in groups) for (int i = 0; i < g.Size; i++) result[g.Id][i] = rng.NextDouble();
                break;
            }
            case ImportanceCriterion.L1:
            case ImportanceCriterion.L2:
                using (no_grad())
                    foreach (var dim in analysis.Dims.Where(d => !d.Consumer && d.Key.EndsWith(".weight") && parameters.ContainsKey(d.Key)))
                    {
                        var w = state[dim.Key];
                        var other = Enumerable.Range(0, (int)w.dim()).Where(d => d != dim.Dim).Select(d => (long)d).ToArray();
                        using var perChannel = criterion == ImportanceCriterion.L1
                            ? (other.Length == 0 ? w.abs() : w.abs().sum(other))
                            : (other.Length == 0 ? w.pow(2) : w.pow(2).sum(other));
                        Accumulate(result, dim, perChannel.data<float>().ToArray());
                    }
                if (criterion == ImportanceCriterion.L2) foreach (var v in result.Values) for (int i = 0; i < v.Length; i++) v[i] = Math.Sqrt(v[i]);
                break;
            case ImportanceCriterion.BnScale:
                using (no_grad())
                    foreach (var g in groups)
                    {
                        var bn = analysis.Dims.FirstOrDefault(d => d.Key.EndsWith(".weight") && model.Graph.Nodes.Any(n => n.Op == Ops.BatchNorm && $"{n.Name}.weight" == d.Key)
                                                                 && d.Map.Any(c => c.Group == g.Id));
                        if (bn is null) continue; // groups without a BatchNorm keep importance 0 under this criterion
                        var gamma = state[bn.Key].abs().data<float>().ToArray();
                        for (int i = 0; i < bn.Map.Length; i++)
                            if (bn.Map[i].Group == g.Id) result[g.Id][bn.Map[i].Index] = Math.Max(result[g.Id][bn.Map[i].Index], gamma[i]);
                    }
                break;
            case ImportanceCriterion.Taylor:
            {
                if (loss is null) throw new ArgumentException("Taylor importance needs a loss");
                var dims = analysis.Dims.Where(d => parameters.ContainsKey(d.Key)).ToList();
                for (int b = 0; b < batches; b++)
                {
                    model.zero_grad();
                    using (var scope = NewDisposeScope()) loss(b).backward();
                    var signed = groups.ToDictionary(g => g.Id, g => new double[g.Size]);
                    using (no_grad())
                        foreach (var dim in dims)
                        {
                            var p = parameters[dim.Key];
                            if (p.grad is null) continue;
                            var other = Enumerable.Range(0, (int)p.dim()).Where(d => d != dim.Dim).Select(d => (long)d).ToArray();
                            using var product = p.mul(p.grad);
                            using var perChannel = other.Length == 0 ? product.clone() : product.sum(other);
                            Accumulate(signed, dim, perChannel.data<float>().ToArray());
                        }
                    foreach (var (g, values) in signed)
                        for (int i = 0; i < values.Length; i++) result[g][i] += Math.Abs(values[i]) / batches;
                }
                model.zero_grad();
                break;
            }
        }
        return result;
    }

    private static void Accumulate(Dictionary<int, double[]> target, ParamDim dim, float[] perEntry)
    {
        for (int i = 0; i < dim.Map.Length; i++)
            if (target.TryGetValue(dim.Map[i].Group, out var values)) values[dim.Map[i].Index] += perEntry[i];
    }
}
