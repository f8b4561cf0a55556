using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Models.Graph;

/// <summary>
/// Simulates low-precision execution inside <see cref="GraphModule.Run"/> (quantization-aware training and
/// fake-quant evaluation). Returned tensors belong to the run's dispose scope.
/// </summary>
public interface IQuantizationSimulator
{
    /// <summary>Runs a conv node with simulated low-precision weights and bias, or returns null to run it as float.</summary>
    Tensor? Conv(GraphNode node, Conv2d conv, Tensor input);

    /// <summary>The value a node (or graph input) passes on: <paramref name="value"/> itself, or its fake-quantized copy.</summary>
    Tensor Value(string name, Tensor value);

    /// <summary>A weight of a node that computes in float (attention fusion, identity injection) as the export stores it.</summary>
    Tensor FloatNodeWeight(GraphNode node, Tensor weight);
}

/// <summary>
/// The TorchSharp network built from a <see cref="NetworkGraph"/>. Each parametric node is a submodule registered
/// under the node's name, so state-dict keys are "{node}.weight", "{node}.query.weight", … . Forward runs the nodes in
/// order inside a dispose scope; only the returned tensors survive, and the caller disposes them.
/// </summary>
public sealed class GraphModule : nn.Module<IReadOnlyDictionary<string, Tensor>, Dictionary<string, Tensor>>
{
    private readonly Dictionary<string, nn.Module> _nodes = new();
    private readonly Dictionary<string, int> _lastUse = new();

    public NetworkGraph Graph { get; }

    /// <summary>
    /// When set, every run simulates quantization (fake-quant weights and activations); null runs in float. Not
    /// owned: the caller disposes the simulator.
    /// </summary>
    public IQuantizationSimulator? Quantization
    {
        get => _quantization;
        set
        {
            _quantization = value;
            foreach (var node in Graph.Nodes)
            {
                Func<Tensor, Tensor>? transform = value is null ? null : w => value.FloatNodeWeight(node, w);
                if (_nodes.GetValueOrDefault(node.Name) is AttentionFusionBlock attention) attention.WeightTransform = transform;
                else if (_nodes.GetValueOrDefault(node.Name) is IdentityInjectionBlock injection) injection.WeightTransform = transform;
            }
        }
    }
    private IQuantizationSimulator? _quantization;

    /// <summary>Builds fresh modules (TorchSharp's default initialisation; seed torch first for reproducibility).</summary>
    public GraphModule(NetworkGraph graph) : base(graph.Name)
    {
        graph.Validate(graph.Name);
        Graph = graph;
        var shapes = ShapeInference.Infer(graph, graph.Resolution > 0 ? graph.Resolution : 64);
        foreach (var input in graph.Inputs) shapes[input.Name] = input.IsImage ? new TensorShape(input.Channels, 1, 1) : new TensorShape(input.Channels, 0, 0);
        for (int i = 0; i < graph.Nodes.Count; i++)
        {
            var node = graph.Nodes[i];
            foreach (var input in node.Inputs) _lastUse[input] = i;
            var inC = node.Inputs.Count > 0 ? shapes[node.Inputs[0]].Channels : 0;
            nn.Module? module = node.Op switch
            {
                Ops.Conv => nn.Conv2d(inC, node.Depthwise ? inC : node.Channels, node.Kernel, node.Stride, node.Padding,
                    groups: ShapeInference.ConvGroups(node, inC), bias: node.Bias),
                Ops.BatchNorm => nn.BatchNorm2d(inC, eps: node.Epsilon > 0 ? node.Epsilon : 1e-5),
                Ops.PRelu => nn.PReLU(inC, 0.25),
                Ops.Linear => nn.Linear(inC, node.Channels, hasBias: node.Bias),
                Ops.AttentionFusion => new AttentionFusionBlock(node.Name, inC, shapes[node.Inputs[1]].Channels, node.InnerChannels, node.EffectiveAttentionScale, node.EffectiveKeyValuePool),
                Ops.IdentityInjection => new IdentityInjectionBlock(node.Name, shapes[node.Inputs[1]].Channels, inC,
                    node.Epsilon > 0 ? node.Epsilon : 1e-5f),
                _ => null,
            };
            if (module is not null)
            {
                _nodes[node.Name] = module;
                register_module(node.Name, module);
            }
        }
        foreach (var output in graph.Outputs) _lastUse[output.Node] = int.MaxValue;
    }

    /// <summary>A new module with the same graph and a copy of every weight and buffer, in the same train/eval mode. The caller disposes it.</summary>
    public GraphModule Clone()
    {
        var copy = new GraphModule(Graph);
        using (no_grad())
        {
            var source = state_dict();
            foreach (var (key, value) in copy.state_dict()) value.copy_(source[key]);
        }
        if (training) copy.train(); else copy.eval();
        return copy;
    }

    /// <summary>The submodule of a parametric node.</summary>
    public nn.Module NodeModule(string name) => _nodes[name];

    /// <summary>Runs the graph; returns the graph outputs by output name.</summary>
    public override Dictionary<string, Tensor> forward(IReadOnlyDictionary<string, Tensor> inputs) => Run(inputs, null);

    /// <summary>
    /// Runs the graph and also returns the outputs of <paramref name="taps"/> (node names), e.g. for feature
    /// distillation. Every returned tensor is the caller's to dispose.
    /// </summary>
    public Dictionary<string, Tensor> Run(IReadOnlyDictionary<string, Tensor> inputs, IReadOnlyCollection<string>? taps)
    {
        using var scope = NewDisposeScope();
        var values = new Dictionary<string, Tensor>();
        foreach (var input in Graph.Inputs)
        {
            if (!inputs.TryGetValue(input.Name, out var t))
                throw new ArgumentException($"{Graph.Name}: missing input '{input.Name}'");
            long expectedRank = input.IsImage ? 4 : 2;
            if (t.dim() != expectedRank || t.shape[1] != input.Channels)
                throw new ArgumentException($"{Graph.Name}: input '{input.Name}' must be [N,{input.Channels}{(input.IsImage ? ",H,W" : "")}], got [{string.Join(",", t.shape)}]");
            values[input.Name] = Quantization?.Value(input.Name, t) ?? t;
        }
        var keep = taps is null ? new HashSet<string>() : new HashSet<string>(taps);
        for (int i = 0; i < Graph.Nodes.Count; i++)
        {
            var node = Graph.Nodes[i];
            var value = Evaluate(node, node.Inputs.Select(n => values[n]).ToArray());
            values[node.Name] = Quantization?.Value(node.Name, value) ?? value;
            // Free activations nobody reads any more: keeps peak memory near the widest point of the graph.
            foreach (var input in node.Inputs.Distinct())
                if (_lastUse[input] == i && !keep.Contains(input) && !Graph.Inputs.Any(g => g.Name == input))
                    values[input].Dispose();
        }
        var results = new Dictionary<string, Tensor>();
        foreach (var output in Graph.Outputs) results[output.Name] = values[output.Node].MoveToOuterDisposeScope();
        foreach (var tap in keep)
        {
            if (!values.TryGetValue(tap, out var t)) throw new ArgumentException($"{Graph.Name}: no node '{tap}' to tap");
            if (!results.ContainsKey(tap)) results[tap] = Graph.Outputs.Any(o => o.Node == tap) ? t.alias().MoveToOuterDisposeScope() : t.MoveToOuterDisposeScope();
        }
        return results;
    }

    private Tensor Evaluate(GraphNode node, Tensor[] x) => node.Op switch
    {
        Ops.Conv => Quantization?.Conv(node, (Conv2d)_nodes[node.Name], x[0]) ?? ((Conv2d)_nodes[node.Name]).call(x[0]),
        Ops.BatchNorm => ((BatchNorm2d)_nodes[node.Name]).call(x[0]),
        Ops.PRelu => ((PReLU)_nodes[node.Name]).call(x[0]),
        Ops.Linear => ((Linear)_nodes[node.Name]).call(x[0]),
        Ops.AttentionFusion => ((AttentionFusionBlock)_nodes[node.Name]).call(x[0], x[1]),
        Ops.IdentityInjection => ((IdentityInjectionBlock)_nodes[node.Name]).call(x[0], x[1]),
        Ops.InstanceNorm => GraphOps.InstanceNorm(x[0], node.Epsilon > 0 ? node.Epsilon : 1e-5f),
        Ops.Act => GraphOps.Activate(x[0], node.Activation!, node.Alpha),
        Ops.Add => x.Skip(1).Aggregate(x[0], (sum, t) => sum.add(t)),
        Ops.Mul => x[0].mul(x[1]),
        Ops.Concat => cat(x, 1),
        Ops.Resize => nn.functional.interpolate(x[0], scale_factor: [node.Scale, node.Scale], mode: InterpolationMode.Nearest),
        Ops.DepthToSpace => GraphOps.DepthToSpace(x[0], node.Scale, node.Mode == DepthToSpaceModes.Dcr),
        Ops.SpaceToDepth => GraphOps.SpaceToDepth(x[0], node.Scale),
        Ops.GlobalAvgPool => x[0].mean([2, 3], keepdim: true),
        Ops.MaxPool => nn.functional.max_pool2d(x[0], node.Kernel, node.Stride, node.Padding),
        Ops.AvgPool => nn.functional.avg_pool2d(x[0], node.Kernel, node.Stride, node.Padding, count_include_pad: false),
        Ops.Flatten => x[0].flatten(1),
        _ => throw new InvalidOperationException($"node '{node.Name}': op '{node.Op}' has no TorchSharp implementation"),
    };
}
