namespace FaceFusion.Compress.Models.Graph;

/// <summary>Per-sample shape: [C,H,W] for feature maps, [C] for vectors (H = W = 0).</summary>
public readonly record struct TensorShape(int Channels, int Height, int Width)
{
    public bool IsImage => Height > 0;
    public long Positions => IsImage ? (long)Height * Width : 1;
    public override string ToString() => IsImage ? $"{Channels}x{Height}x{Width}" : $"{Channels}";
}

/// <summary>Shape, parameter and multiply-accumulate count of one node at one resolution.</summary>
public sealed record NodeCost(string Name, string Op, string? Stage, TensorShape Output, long Params, long Macs);

/// <summary>
/// Shapes, params and MACs from the graph alone. MACs count multiply-accumulates of convolutions, linear layers,
/// identity-injection projections and the attention matmuls; element-wise ops (norms, activations, adds,
/// resizes, pools) count 0 — BN folds into convs at export, the rest is memory-bound, not MAC-bound.
/// </summary>
public static class ShapeInference
{
    public static Dictionary<string, TensorShape> Infer(NetworkGraph graph, int resolution) =>
        Costs(graph, resolution).ToDictionary(c => c.Name, c => c.Output);

    /// <summary>Per-node costs in execution order. Throws naming the node when channel counts do not fit.</summary>
    public static List<NodeCost> Costs(NetworkGraph graph, int resolution)
    {
        var shapes = new Dictionary<string, TensorShape>();
        foreach (var input in graph.Inputs)
            shapes[input.Name] = input.IsImage ? new TensorShape(input.Channels, resolution, resolution) : new TensorShape(input.Channels, 0, 0);
        var costs = new List<NodeCost>();
        foreach (var node in graph.Nodes)
        {
            var ins = node.Inputs.Select(i => shapes[i]).ToArray();
            var (shape, parameters, macs) = Compute(node, ins);
            shapes[node.Name] = shape;
            costs.Add(new NodeCost(node.Name, node.Op, node.Stage, shape, parameters, macs));
        }
        return costs;
    }

    /// <summary>Input channels of a conv-like node given its inputs' shapes.</summary>
    public static int ConvGroups(GraphNode node, int inChannels) => node.Depthwise ? inChannels : node.Groups;

    private static (TensorShape, long, long) Compute(GraphNode node, TensorShape[] ins)
    {
        string Where() => $"node '{node.Name}' ({node.Op})";
        TensorShape One()
        {
            if (ins.Length != 1) throw new InvalidDataException($"{Where()} needs exactly one input, has {ins.Length}");
            return ins[0];
        }
        TensorShape Image(TensorShape s)
        {
            if (!s.IsImage) throw new InvalidDataException($"{Where()} needs a feature map input, got a vector [{s}]");
            return s;
        }
        switch (node.Op)
        {
            case Ops.Conv:
            {
                var x = Image(One());
                int groups = ConvGroups(node, x.Channels);
                int outC = node.Depthwise ? x.Channels : node.Channels;
                if (groups <= 0 || x.Channels % groups != 0 || outC % groups != 0)
                    throw new InvalidDataException($"{Where()}: {x.Channels} input and {outC} output channels do not divide into {groups} groups");
                int h = (x.Height + 2 * node.Padding - node.Kernel) / node.Stride + 1;
                int w = (x.Width + 2 * node.Padding - node.Kernel) / node.Stride + 1;
                if (h <= 0 || w <= 0) throw new InvalidDataException($"{Where()}: input {x} is too small for kernel {node.Kernel}, stride {node.Stride}");
                long perOut = (long)(x.Channels / groups) * node.Kernel * node.Kernel;
                long parameters = outC * perOut + (node.Bias ? outC : 0);
                return (new TensorShape(outC, h, w), parameters, outC * perOut * h * w);
            }
            case Ops.BatchNorm:
            {
                var x = One();
                return (x, 2L * x.Channels, 0);
            }
            case Ops.PRelu:
            {
                var x = One();
                return (x, x.Channels, 0);
            }
            case Ops.InstanceNorm:
                return (Image(One()), 0, 0);
            case Ops.Act:
                return (One(), 0, 0);
            case Ops.Add:
            {
                if (ins.Length < 2) throw new InvalidDataException($"{Where()} needs at least two inputs");
                if (ins.Any(s => s != ins[0]))
                    throw new InvalidDataException($"{Where()}: inputs differ in shape ({string.Join(", ", ins)})");
                return (ins[0], 0, 0);
            }
            case Ops.Mul:
            {
                if (ins.Length != 2) throw new InvalidDataException($"{Where()} needs two inputs");
                var (a, b) = (ins[0], ins[1]);
                bool gate = b.Channels == a.Channels && (b == a || b.Positions == 1);
                if (!gate) throw new InvalidDataException($"{Where()}: cannot multiply [{a}] by [{b}]");
                return (a, 0, 0);
            }
            case Ops.Concat:
            {
                if (ins.Length < 2) throw new InvalidDataException($"{Where()} needs at least two inputs");
                if (ins.Any(s => s.Height != ins[0].Height || s.Width != ins[0].Width))
                    throw new InvalidDataException($"{Where()}: inputs differ in spatial size ({string.Join(", ", ins)})");
                return (ins[0] with { Channels = ins.Sum(s => s.Channels) }, 0, 0);
            }
            case Ops.Resize:
            {
                var x = Image(One());
                if (node.Scale < 1) throw new InvalidDataException($"{Where()}: scale must be ≥ 1");
                return (new TensorShape(x.Channels, x.Height * node.Scale, x.Width * node.Scale), 0, 0);
            }
            case Ops.DepthToSpace:
            {
                var x = Image(One());
                int r = node.Scale;
                if (r < 1) throw new InvalidDataException($"{Where()}: scale must be ≥ 1");
                if (x.Channels % (r * r) != 0)
                    throw new InvalidDataException($"{Where()}: {x.Channels} input channels do not divide into blocks of {r}² = {r * r}");
                return (new TensorShape(x.Channels / (r * r), x.Height * r, x.Width * r), 0, 0);
            }
            case Ops.SpaceToDepth:
            {
                var x = Image(One());
                int r = node.Scale;
                if (r < 1) throw new InvalidDataException($"{Where()}: scale must be ≥ 1");
                if (x.Height % r != 0 || x.Width % r != 0)
                    throw new InvalidDataException($"{Where()}: block size {r} does not divide the input's {x.Height}×{x.Width} positions");
                return (new TensorShape(x.Channels * r * r, x.Height / r, x.Width / r), 0, 0);
            }
            case Ops.GlobalAvgPool:
            {
                var x = Image(One());
                return (new TensorShape(x.Channels, 1, 1), 0, 0);
            }
            case Ops.MaxPool:
            case Ops.AvgPool:
            {
                var x = Image(One());
                int h = (x.Height + 2 * node.Padding - node.Kernel) / node.Stride + 1;
                int w = (x.Width + 2 * node.Padding - node.Kernel) / node.Stride + 1;
                if (h <= 0 || w <= 0) throw new InvalidDataException($"{Where()}: input {x} is too small");
                return (new TensorShape(x.Channels, h, w), 0, 0);
            }
            case Ops.Flatten:
            {
                var x = One();
                return (new TensorShape((int)(x.Channels * x.Positions), 0, 0), 0, 0);
            }
            case Ops.Linear:
            {
                var x = One();
                if (x.IsImage) throw new InvalidDataException($"{Where()} needs a vector input, got [{x}]");
                long parameters = (long)x.Channels * node.Channels + (node.Bias ? node.Channels : 0);
                return (new TensorShape(node.Channels, 0, 0), parameters, (long)x.Channels * node.Channels);
            }
            case Ops.AttentionFusion:
            {
                if (ins.Length != 2) throw new InvalidDataException($"{Where()} needs (query source, key/value target)");
                var (q, kv) = (Image(ins[0]), Image(ins[1]));
                if (q.Height != kv.Height || q.Width != kv.Width)
                    throw new InvalidDataException($"{Where()}: query [{q}] and key/value [{kv}] differ in spatial size");
                int inner = node.InnerChannels;
                if (inner <= 0) throw new InvalidDataException($"{Where()}: inner channels must be positive");
                int pool = node.EffectiveKeyValuePool;
                if (kv.Height % pool != 0 || kv.Width % pool != 0)
                    throw new InvalidDataException($"{Where()}: key/value pooling {pool} does not divide the target's {kv.Height}×{kv.Width} positions");
                long n = kv.Positions, keys = n / ((long)pool * pool);
                // query 1×1 (q.C→inner) on every position; key 1×1 (kv.C→inner) and value 1×1 (kv.C→kv.C) on the
                // pooled positions; all with bias, and gamma. Scores and the weighted sum: n queries × keys.
                long parameters = (long)q.Channels * inner + inner + (long)kv.Channels * inner + inner + (long)kv.Channels * kv.Channels + kv.Channels + 1;
                long macs = n * (long)q.Channels * inner + keys * ((long)kv.Channels * inner + (long)kv.Channels * kv.Channels)
                            + n * keys * inner + n * keys * kv.Channels;
                return (kv, parameters, macs);
            }
            case Ops.IdentityInjection:
            {
                if (ins.Length != 2) throw new InvalidDataException($"{Where()} needs (features, identity vector)");
                var (x, id) = (Image(ins[0]), ins[1]);
                if (id.IsImage) throw new InvalidDataException($"{Where()}: identity input must be a vector, got [{id}]");
                long parameters = (long)id.Channels * 2 * x.Channels + 2L * x.Channels;
                return (x, parameters, (long)id.Channels * 2 * x.Channels);
            }
            default:
                throw new InvalidDataException($"{Where()}: unknown op");
        }
    }
}
