using FaceFusion.Compress.Data;
using FaceFusion.Compress.Models.Architectures;
using FaceFusion.Compress.Models.Graph;
using FaceFusion.Compress.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Quantization;

/// <summary>How activation ranges are chosen from calibration data.</summary>
public enum CalibrationMethod
{
    /// <summary>The observed extremes.</summary>
    MinMax,
    /// <summary>The central 99.99 % (configurable) of the samples: clips rare outliers.</summary>
    Percentile,
    /// <summary>The clipping range whose 8-bit histogram is closest to the float one in KL divergence (entropy calibration).</summary>
    Entropy,
}

/// <summary>Storage of the weights of nodes that compute in float.</summary>
public enum FloatIslandWeights { Int8, Fp16, Fp32 }

/// <summary>
/// Which nodes run in INT8. Default, as the article describes: every convolution outside attention fusion and
/// identity injection is INT8 (weights symmetric per output channel, activations asymmetric UINT8 — the form ONNX
/// Runtime's CPU QLinearConv kernels run fastest with u8 activations and s8 weights); attention fusion, identity
/// injection, normalisation layers and skip connections (adds, concats) stay float. Nodes named in
/// <see cref="KeepFloat"/> also stay float.
/// </summary>
public sealed record QuantPolicy
{
    /// <summary>
    /// How the weights of the float islands (attention fusion, identity injection) are stored: INT8 per output channel
    /// behind a DequantizeLinear (default: their compute stays float, the file shrinks), FP16, or FP32.
    /// </summary>
    public FloatIslandWeights IslandWeights { get; init; } = FloatIslandWeights.Int8;

    /// <summary>Store the large weights of convs kept float (and linear layers) as FP16; they still compute in FP32.</summary>
    public bool CompactFloatWeights { get; init; } = true;

    /// <summary>
    /// Weights of quantized convs use 7 bits ([−63, 63]) instead of 8. On x86 CPUs without VNNI, ONNX Runtime's u8×s8
    /// kernels add pairs of products in 16 bits with saturation; full-range weights overflow there (large input values
    /// times large weights) and the INT8 model silently departs from its QDQ definition. On by default; turn it off
    /// only for VNNI/ARM targets.
    /// </summary>
    public bool ReduceRange { get; init; } = true;

    /// <summary>The largest quantized weight magnitude: 63 with <see cref="ReduceRange"/>, else 127.</summary>
    public int WeightLevels => ReduceRange ? 63 : 127;

    public IReadOnlySet<string> KeepFloat { get; init; } = new HashSet<string>();
    /// <summary>
    /// Also run skip connections and their plumbing in INT8 (adds, concats, nearest resizes, depth/space moves, SE gates, global pools):
    /// fewer float islands, so small networks gain more from INT8, at some accuracy risk. Off by default (the article's policy).
    /// </summary>
    public bool QuantizeSkips { get; init; }

    /// <summary>The nodes that stay float under this policy (what the exported model runs in FP32).</summary>
    public IReadOnlyList<string> FloatNodes(NetworkGraph graph) => graph.Nodes.Where(n =>
        n.Op is Ops.AttentionFusion or Ops.IdentityInjection or Ops.InstanceNorm or Ops.BatchNorm or Ops.Linear
        || (n.Op == Ops.Conv && KeepFloat.Contains(n.Name))
        || (!QuantizeSkips && n.Op is Ops.Add or Ops.Concat or Ops.Resize or Ops.DepthToSpace or Ops.SpaceToDepth or Ops.Mul or Ops.GlobalAvgPool)).Select(n => n.Name).ToList();

    /// <summary>The quantized convs of a graph.</summary>
    public IReadOnlyList<GraphNode> QuantizedConvs(NetworkGraph graph) =>
        graph.Nodes.Where(n => n.Op == Ops.Conv && !KeepFloat.Contains(n.Name)).ToList();

    /// <summary>
    /// The graph values that get a QuantizeLinear/DequantizeLinear pair: each quantized conv's input, and its output
    /// taken after the BatchNorm and ReLU-family activation that fold or fuse into it.
    /// </summary>
    public HashSet<string> QuantizedValues(NetworkGraph graph)
    {
        var values = new HashSet<string>();
        var readers = graph.Nodes.SelectMany(n => n.Inputs.Select(i => (Input: i, Node: n))).ToLookup(p => p.Input, p => p.Node);
        foreach (var conv in QuantizedConvs(graph))
        {
            values.Add(conv.Inputs[0]);
            foreach (var v in ConvOutputs(graph, conv, readers)) values.Add(v);
        }
        if (QuantizeSkips)
            foreach (var node in graph.Nodes.Where(n => n.Op is Ops.Add or Ops.Concat or Ops.Resize or Ops.DepthToSpace or Ops.SpaceToDepth or Ops.Mul or Ops.GlobalAvgPool && !KeepFloat.Contains(n.Name)))
            {
                values.Add(node.Name);
                foreach (var input in node.Inputs) values.Add(input);
            }
        return values;
    }

    /// <summary>
    /// Where a quantized conv's output is quantized. ONNX Runtime folds a ReLU or ReLU6 that is followed by a
    /// QuantizeLinear into the conv, so those are quantized after the activation only; a leaky ReLU runs as its own
    /// quantized kernel (QLinearLeakyRelu), so it gets a pair before and after; any other consumer reads the conv
    /// (after its folded BatchNorm) through one pair.
    /// </summary>
    public static IEnumerable<string> ConvOutputs(NetworkGraph graph, GraphNode conv, ILookup<string, GraphNode> readers)
    {
        string value = conv.Name;
        var next = readers[value].ToList();
        if (next.Count == 1 && next[0].Op == Ops.BatchNorm) { value = next[0].Name; next = readers[value].ToList(); }
        if (next.Count == 1 && next[0].Op == Ops.Act && next[0].Activation is Activations.Relu or Activations.Relu6)
        {
            yield return next[0].Name;
            yield break;
        }
        yield return value;
        if (next.Count == 1 && next[0].Op == Ops.Act && next[0].Activation == Activations.LeakyRelu) yield return next[0].Name;
    }
}

/// <summary>Collects activation ranges of chosen graph values on calibration images.</summary>
public static class Calibrator
{
    /// <summary>
    /// Runs <paramref name="model"/> (eval mode) on <paramref name="images"/> faces of the train split and returns
    /// UINT8 parameters per value. Percentile keeps the central 99.99 % of each value's samples.
    /// </summary>
    public static Dictionary<string, QuantParams> Calibrate(GraphModule model, IReadOnlyCollection<string> values, string dataDir, int images,
        CalibrationMethod method = CalibrationMethod.MinMax, double percentile = 99.99, int seed = 1) =>
        Calibrate(model, values, SwapperBatches(model.Graph.Resolution, dataDir, images, seed), method, percentile);

    /// <summary>
    /// Swapper feeds (target crop in [−1,1], source embedding) of <paramref name="images"/> seeded faces of
    /// <paramref name="split"/> (train by default), 8 at a time; each feed's tensors are the consumer's to dispose.
    /// </summary>
    public static IEnumerable<Dictionary<string, Tensor>> SwapperBatches(int resolution, string dataDir, int images, int seed, string split = Splits.Train)
    {
        using var data = new FaceSwapData(dataDir, split, resolution);
        var rng = new Random(seed);
        var targets = Enumerable.Range(0, data.Count).OrderBy(_ => rng.Next()).Take(Math.Min(images, data.Count)).ToArray();
        var sources = targets.Select(_ => rng.Next(data.Count)).ToArray();
        for (int start = 0; start < targets.Length; start += 8)
        {
            using var batch = data.Pairs(targets.Skip(start).Take(8).ToArray(), sources.Skip(start).Take(8).ToArray());
            yield return new Dictionary<string, Tensor> { [SwapperIO.Target] = batch.Target.alias(), [SwapperIO.Source] = batch.Source.alias() };
        }
    }

    /// <summary>
    /// Calibrates on any feeds (e.g. a user's own CNN on its own inputs). Each feed's tensors are disposed after use.
    /// Percentile keeps the central 99.99 % of each value's samples; entropy minimises the KL divergence of the 8-bit histogram.
    /// </summary>
    public static Dictionary<string, QuantParams> Calibrate(GraphModule model, IReadOnlyCollection<string> values, IEnumerable<Dictionary<string, Tensor>> batches,
        CalibrationMethod method, double percentile = 99.99)
    {
        model.eval();
        var mins = values.ToDictionary(v => v, _ => double.PositiveInfinity);
        var maxs = values.ToDictionary(v => v, _ => double.NegativeInfinity);
        var samples = values.ToDictionary(v => v, _ => new List<float>());
        var inputs = model.Graph.Inputs.Select(i => i.Name).ToHashSet();
        using (no_grad())
            foreach (var feeds in batches)
            {
                using var scope = NewDisposeScope();
                using var owned = new FeedsOwner(feeds);
                var outputs = model.Run(feeds, values.Where(v => !inputs.Contains(v)).ToList());
                foreach (var v in values)
                {
                    var t = inputs.Contains(v) ? feeds[v] : outputs[v];
                    mins[v] = Math.Min(mins[v], t.min().item<float>());
                    maxs[v] = Math.Max(maxs[v], t.max().item<float>());
                    if (method != CalibrationMethod.MinMax)
                    {
                        // A strided sample keeps memory bounded on large maps.
                        var flat = t.flatten();
                        long step = Math.Max(1, flat.shape[0] / 20000);
                        samples[v].AddRange(flat.slice(0, 0, flat.shape[0], step).data<float>().ToArray());
                    }
                }
            }
        return values.ToDictionary(v => v, v =>
        {
            if (method == CalibrationMethod.MinMax || samples[v].Count == 0) return QuantParams.Uint8(mins[v], maxs[v]);
            if (method == CalibrationMethod.Entropy)
            {
                var (clippedMin, clippedMax) = EntropyRange(samples[v], mins[v], maxs[v]);
                return QuantParams.Uint8(clippedMin, clippedMax);
            }
            var sorted = samples[v].Order().ToArray();
            double lo = sorted[(int)Math.Floor((100 - percentile) / 100 * (sorted.Length - 1))];
            double hi = sorted[(int)Math.Ceiling(percentile / 100 * (sorted.Length - 1))];
            return QuantParams.Uint8(lo, hi);
        });
    }

    /// <summary>
    /// Entropy calibration: a 2048-bin histogram of the values (of |x| when they have both signs), then the clipping
    /// threshold of <see cref="EntropyThresholdBins"/> (255 levels on [0, t] for one-signed values, 128 per side
    /// otherwise). Returns the clipped range.
    /// </summary>
    public static (double Min, double Max) EntropyRange(IReadOnlyList<float> samples, double min, double max)
    {
        bool oneSided = min >= 0 || max <= 0;
        double absMax = Math.Max(Math.Abs(min), Math.Abs(max));
        if (samples.Count == 0 || !(absMax > 0) || !double.IsFinite(absMax)) return (min, max);
        var hist = new double[EntropyBins];
        foreach (var x in samples)
        {
            int b = (int)(Math.Abs(x) / absMax * EntropyBins);
            hist[Math.Clamp(b, 0, EntropyBins - 1)]++;
        }
        int best = EntropyThresholdBins(hist, oneSided ? 255 : 128);
        double threshold = (double)best / EntropyBins * absMax;
        return oneSided
            ? (min >= 0 ? (0, Math.Min(max, threshold)) : (Math.Max(min, -threshold), 0))
            : (Math.Max(min, -threshold), Math.Min(max, threshold));
    }

    /// <summary>The histogram size <see cref="EntropyRange"/> uses.</summary>
    public const int EntropyBins = 2048;

    /// <summary>
    /// The KL (TensorRT-style) choice of a clipping threshold on a histogram of magnitudes: for each candidate i
    /// (<paramref name="levels"/> … hist.Length bins kept), the reference p is hist[:i] with the outliers hist[i:]
    /// folded into its last bin; the candidate q is the unfolded hist[:i] merged into <paramref name="levels"/> groups,
    /// each group's mass spread evenly over the bins where p is non-empty. Returns the i with the least KL(p‖q).
    /// q must come from the unfolded histogram: built from p, the first candidate reproduces p exactly (KL = 0) and
    /// always wins, whatever the data.
    /// </summary>
    public static int EntropyThresholdBins(IReadOnlyList<double> hist, int levels)
    {
        int bins = hist.Count;
        if (bins <= levels) return bins;
        double total = 0;
        for (int j = 0; j < bins; j++) total += hist[j];
        if (!(total > 0)) return bins;
        double bestKl = double.PositiveInfinity;
        int best = bins;
        var p = new double[bins];
        var q = new double[bins];
        double kept = 0;
        for (int j = 0; j < levels - 1; j++) kept += hist[j];
        for (int i = levels; i <= bins; i++)
        {
            kept += hist[i - 1];
            for (int j = 0; j < i; j++) p[j] = hist[j];
            p[i - 1] += total - kept;
            Array.Clear(q, 0, i);
            for (int g = 0; g < levels; g++)
            {
                int start = (int)((long)g * i / levels), end = (int)((long)(g + 1) * i / levels);
                double mass = 0;
                int nonEmpty = 0;
                for (int j = start; j < end; j++) { mass += hist[j]; if (p[j] > 0) nonEmpty++; }
                if (nonEmpty == 0) continue;
                for (int j = start; j < end; j++) if (p[j] > 0) q[j] = mass / nonEmpty;
            }
            double sumQ = 0;
            for (int j = 0; j < i; j++) sumQ += q[j];
            if (sumQ <= 0) continue;
            // p sums to the total; a bin where p has mass and q none (a group of outliers only) gets a tiny q,
            // a large but finite penalty.
            double kl = 0;
            for (int j = 0; j < i; j++)
                if (p[j] > 0) kl += p[j] / total * Math.Log(p[j] / total / Math.Max(q[j] / sumQ, 1e-12));
            if (kl < bestKl) { bestKl = kl; best = i; }
        }
        return best;
    }
}

/// <summary>Disposes a feed dictionary's tensors.</summary>
internal sealed class FeedsOwner(Dictionary<string, Tensor> feeds) : IDisposable
{
    public void Dispose()
    {
        foreach (var t in feeds.Values) t.Dispose();
    }
}
