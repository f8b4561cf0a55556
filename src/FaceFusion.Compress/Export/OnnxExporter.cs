using FaceFusion.Compress.Assets;
using System.Reflection;
using FaceFusion.Compress.Models.Graph;
using Google.Protobuf;
using Onnx;
using TorchSharp;
using static TorchSharp.torch;
using DataType = Onnx.TensorProto.Types.DataType;

namespace FaceFusion.Compress.Export;

/// <summary>Numeric precision of an exported model.</summary>
public enum ExportPrecision { Fp32, Fp16, Int8 }

/// <summary>Options of <see cref="OnnxExporter.Export"/>.</summary>
public sealed record ExportOptions
{
    public ExportPrecision Precision { get; init; } = ExportPrecision.Fp32;
    /// <summary>Static spatial size of image inputs; the graph's own resolution when null.</summary>
    public int? Resolution { get; init; }
    /// <summary>ONNX opset (17 by default; 13–21 accepted).</summary>
    public int Opset { get; init; } = 17;
    /// <summary>Fold each BatchNorm into the conv before it (w' = w·γ/√(σ²+ε), b' = (b − μ)·γ/√(σ²+ε) + β).</summary>
    public bool FoldBatchNorm { get; init; } = true;
    /// <summary>
    /// Compute dense float convs that read the same value with the same kernel, stride and padding as one Conv
    /// followed by a Split (exact: the output channels are concatenated). The swappers' 3-channel image head and
    /// 1-channel mask head are such a pair: ONNX Runtime's CPU convs with so few output channels are bound by reading
    /// the input, which the merged conv does once.
    /// Null (the default) merges in INT8 exports only. A float file is what other tools quantize, and a per-tensor
    /// quantizer would give the merged output one scale, set by the mask logits' far wider range (ONNX Runtime's
    /// quantizer loses 5.2 dB on the teacher that way); the toolkit's own INT8 export merges only convs it keeps float.
    /// </summary>
    public bool? MergeSiblingConvs { get; init; }

    /// <summary>Whether sibling convs are merged: <see cref="MergeSiblingConvs"/>, else only for INT8.</summary>
    public bool MergesSiblingConvs => MergeSiblingConvs ?? Precision == ExportPrecision.Int8;
    /// <summary>INT8 only: which nodes are quantized and the calibrated UINT8 parameters of each quantized value.</summary>
    public FaceFusion.Compress.Quantization.QuantPolicy? Policy { get; init; }
    public IReadOnlyDictionary<string, FaceFusion.Compress.Quantization.QuantParams>? ActivationParams { get; init; }
    /// <summary>Extra metadata_props (source checkpoint, recipe, training data note, …).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string>();
}

/// <summary>Raised when a graph cannot be exported; the message names the node.</summary>
public sealed class ExportException(string message) : Exception(message);

/// <summary>
/// Writes an ONNX ModelProto from a graph description and its TorchSharp weights: BatchNorm folded into convs,
/// attention fusion as MatMul/Softmax, identity injection as InstanceNormalization + Gemm + Mul/Add, resize as
/// Resize, a dynamic batch dimension "N". FP16 stores weights and computes in half precision with float32 inputs
/// and outputs; InstanceNormalization, the attention scores (MatMul → scale → Softmax) and the identity projections
/// stay float32, where half precision loses accuracy (variance and exponent range).
/// </summary>
public sealed class OnnxExporter
{
    public const int MinOpset = 13, MaxOpset = 21;
    private readonly NetworkGraph _graph;
    private readonly Dictionary<string, Tensor> _state;
    private readonly ExportOptions _options;
    private readonly GraphProto _onnx = new();
    private readonly Dictionary<string, DataType> _types = new();
    private readonly Dictionary<(string, DataType), string> _casts = new();
    private readonly Dictionary<string, string> _valueOf = new();
    private readonly Dictionary<string, TensorShape> _shapes;
    private int _counter;

    private DataType Compute => _options.Precision == ExportPrecision.Fp16 ? DataType.Float16 : DataType.Float;
    private bool Int8 => _options.Precision == ExportPrecision.Int8;
    private HashSet<string> _quantizedConvs = [];
    /// <summary>Sibling convs computed as one (<see cref="ExportOptions.MergeSiblingConvs"/>): member → its group, in graph order.</summary>
    private Dictionary<string, List<GraphNode>> _siblings = [];
    /// <summary>Outputs of merged convs already emitted: member → its slice of the Split.</summary>
    private readonly Dictionary<string, string> _mergedOutputs = [];
    /// <summary>BatchNorms folded into the conv before them: BN name → conv name.</summary>
    private Dictionary<string, string> _folded = [];

    private OnnxExporter(GraphModule model, ExportOptions options)
    {
        _graph = model.Graph;
        _options = options;
        _state = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().cpu().to_type(ScalarType.Float32));
        int resolution = options.Resolution ?? (_graph.Resolution > 0 ? _graph.Resolution : throw new ExportException($"{_graph.Name}: no resolution given"));
        _shapes = ShapeInference.Infer(_graph, resolution);
        foreach (var input in _graph.Inputs)
            _shapes[input.Name] = input.IsImage ? new TensorShape(input.Channels, resolution, resolution) : new TensorShape(input.Channels, 0, 0);
    }

    /// <summary>Exports <paramref name="model"/> (its current weights; BN uses running statistics) to a ModelProto.</summary>
    public static ModelProto Export(GraphModule model, ExportOptions? options = null)
    {
        options ??= new ExportOptions();
        if (options.Precision == ExportPrecision.Int8 && (options.Policy is null || options.ActivationParams is null))
            throw new ExportException("INT8 export needs a quantization policy and calibrated activation parameters (ffc ptq)");
        if (options.Opset is < MinOpset or > MaxOpset)
            throw new ExportException($"opset {options.Opset} is not supported (use {MinOpset}–{MaxOpset}; 17 recommended)");
        using var scope = NewDisposeScope();
        return new OnnxExporter(model, options).Build();
    }

    /// <summary>Exports and writes to <paramref name="path"/> through a temporary file and a rename.</summary>
    public static ModelProto ExportToFile(GraphModule model, string path, ExportOptions? options = null)
    {
        var proto = Export(model, options);
        FaceFusion.Compress.Assets.DiskSpace.Require(path, proto.CalculateSize(), "the ONNX model");
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        AtomicFile.WriteAllBytes(path, proto.ToByteArray());
        return proto;
    }

    private ModelProto Build()
    {
        _onnx.Name = _graph.Name;
        int resolution = _options.Resolution ?? _graph.Resolution;
        if (Int8) _quantizedConvs = _options.Policy!.QuantizedConvs(_graph).Select(n => n.Name).ToHashSet();
        foreach (var input in _graph.Inputs)
        {
            _onnx.Input.Add(ValueInfo(input.Name, DataType.Float, input.IsImage ? [-1, input.Channels, resolution, resolution] : [-1, input.Channels]));
            _types[input.Name] = DataType.Float;
            _valueOf[input.Name] = QuantizeIfCalibrated(input.Name, input.Name);
        }
        var folded = _folded = FoldableBatchNorms();
        _siblings = SiblingConvs();
        foreach (var node in _graph.Nodes)
        {
            if (folded.ContainsKey(node.Name)) continue; // emitted with its conv
            var bnAfter = folded.FirstOrDefault(kv => kv.Value == node.Name).Key;
            var graphValue = bnAfter ?? node.Name;
            _valueOf[graphValue] = QuantizeIfCalibrated(graphValue, EmitNode(node, bnAfter is null ? null : _graph.Node(bnAfter)));
            if (bnAfter is not null) _valueOf[node.Name] = _valueOf[bnAfter];
        }
        foreach (var output in _graph.Outputs)
        {
            var value = Ensure(_valueOf[output.Node], DataType.Float);
            var shape = _shapes[output.Node];
            Emit("Identity", [value], output.Name);
            _onnx.Output.Add(ValueInfo(output.Name, DataType.Float, shape.IsImage ? [-1, shape.Channels, shape.Height, shape.Width] : [-1, shape.Channels]));
        }
        var model = new ModelProto
        {
            IrVersion = 8, ProducerName = "FaceFusion.Compress",
            ProducerVersion = typeof(OnnxExporter).Assembly.GetName().Version?.ToString(3) ?? "0", Graph = _onnx,
            DocString = $"{_graph.Name} exported by FaceFusion.Compress ({_options.Precision.ToString().ToLowerInvariant()})",
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = _options.Opset });
        var meta = new Dictionary<string, string>(_graph.Metadata.ToDictionary(kv => kv.Key, kv => kv.Value))
        {
            ["architecture_hash"] = _graph.ArchitectureHash(),
            ["architecture"] = _graph.Name,
            ["precision"] = _options.Precision.ToString().ToLowerInvariant(),
            ["sibling_convs"] = _options.MergesSiblingConvs ? "merged" : "separate",
            ["resolution"] = resolution.ToString(),
            ["params"] = ModelSummary.Of(_graph, resolution).Params.ToString(),
            ["macs"] = ModelSummary.Of(_graph, resolution).Macs.ToString(),
            ["toolkit_version"] = typeof(OnnxExporter).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0",
        };
        // Checkpoints from before the compatibility note: a swapper on the bundled embedder is shape-compatible only.
        if (meta.GetValueOrDefault("embedder") == "fr_feature.onnx" && !meta.ContainsKey("facefusion_compatibility"))
            meta["facefusion_compatibility"] = FaceFusion.Compress.Models.Architectures.SwapperIO.DefaultCompatibility;
        foreach (var (k, v) in _options.Metadata) meta[k] = v;
        foreach (var (k, v) in meta.OrderBy(kv => kv.Key, StringComparer.Ordinal)) model.MetadataProps.Add(new StringStringEntryProto { Key = k, Value = v });
        return model;
    }

    /// <summary>BatchNorm nodes whose input is a conv read by nothing else: BN name → conv name.</summary>
    private Dictionary<string, string> FoldableBatchNorms()
    {
        var result = new Dictionary<string, string>();
        if (!_options.FoldBatchNorm) return result;
        var readers = _graph.Nodes.SelectMany(n => n.Inputs.Select(i => (i, n.Name))).GroupBy(p => p.i).ToDictionary(g => g.Key, g => g.Count());
        foreach (var bn in _graph.Nodes.Where(n => n.Op == Ops.BatchNorm))
        {
            var producer = _graph.Nodes.FirstOrDefault(n => n.Name == bn.Inputs[0]);
            if (producer?.Op == Ops.Conv && readers.GetValueOrDefault(producer.Name) == 1 && _graph.Outputs.All(o => o.Node != producer.Name))
                result[bn.Name] = producer.Name;
        }
        return result;
    }

    /// <summary>
    /// Groups of two or more dense, float convs reading the same value with the same geometry, whose outputs are not
    /// graph outputs themselves (a BN folded into a member is fine: each member's weights are folded first).
    /// </summary>
    private Dictionary<string, List<GraphNode>> SiblingConvs()
    {
        var result = new Dictionary<string, List<GraphNode>>();
        if (!_options.MergesSiblingConvs) return result;
        var candidates = _graph.Nodes.Where(n => n.Op == Ops.Conv && !n.Depthwise && n.Groups == 1 && !_quantizedConvs.Contains(n.Name)
            && _graph.Outputs.All(o => o.Node != n.Name));
        foreach (var group in candidates.GroupBy(n => (n.Inputs[0], n.Kernel, n.Stride, n.Padding)).Where(g => g.Count() > 1))
        {
            var members = group.ToList();
            foreach (var m in members) result[m.Name] = members;
        }
        return result;
    }

    /// <summary>
    /// Emits a sibling group's convs as one Conv (weights and biases concatenated along the output channels, each
    /// member's BatchNorm folded first) and a Split, on the first member; later members return their slice.
    /// </summary>
    private string MergedConv(GraphNode node)
    {
        if (_mergedOutputs.TryGetValue(node.Name, out var done)) return done;
        var members = _siblings[node.Name];
        var weights = new List<Tensor>();
        var biases = new List<Tensor>();
        foreach (var m in members)
        {
            var w = _state[$"{m.Name}.weight"];
            var b = m.Bias ? _state[$"{m.Name}.bias"] : zeros(w.shape[0]);
            var bn = _folded.FirstOrDefault(kv => kv.Value == m.Name).Key;
            if (bn is not null) (w, b) = FoldBatchNorm(w, b, _graph.Node(bn));
            weights.Add(w);
            biases.Add(b);
        }
        var c = Compute;
        string name = string.Join("_", members.Select(m => m.Name));
        var merged = Emit("Conv", [Ensure(_valueOf[node.Inputs[0]], c), FloatWeight($"{name}.weight", cat(weights, 0), c), Initializer($"{name}.bias", cat(biases, 0), c)],
            Fresh(name), Ints("kernel_shape", node.Kernel, node.Kernel), Ints("strides", node.Stride, node.Stride),
            Ints("pads", node.Padding, node.Padding, node.Padding, node.Padding), Int("group", 1));
        var split = new NodeProto { OpType = "Split", Name = Fresh($"{name}_split") };
        split.Input.Add(merged);
        split.Input.Add(Constant($"{name}_split_sizes", weights.Select(w => w.shape[0]).ToArray()));
        split.Attribute.Add(Int("axis", 1));
        foreach (var m in members)
        {
            var output = Typed(Fresh(m.Name), c);
            split.Output.Add(output);
            _mergedOutputs[m.Name] = output;
        }
        _onnx.Node.Add(split);
        return _mergedOutputs[node.Name];
    }

    private string EmitNode(GraphNode node, GraphNode? foldedBn)
    {
        string In(int i) => _valueOf[node.Inputs[i]];
        string At(int i, DataType t) => Ensure(In(i), t);
        var shape = _shapes[node.Name];
        var c = Compute;
        switch (node.Op)
        {
            case Ops.Conv when _siblings.ContainsKey(node.Name):
                return MergedConv(node);
            case Ops.Conv:
            {
                var w = _state[$"{node.Name}.weight"];
                var b = node.Bias ? _state[$"{node.Name}.bias"] : zeros(w.shape[0]);
                if (foldedBn is not null) (w, b) = FoldBatchNorm(w, b, foldedBn);
                int inC = _shapes[node.Inputs[0]].Channels;
                if (_quantizedConvs.Contains(node.Name))
                {
                    var (qw, qb) = QuantizedWeights(node, w, b);
                    return Typed(Emit("Conv", [In(0), qw, qb], Fresh(foldedBn?.Name ?? node.Name),
                        Ints("kernel_shape", node.Kernel, node.Kernel), Ints("strides", node.Stride, node.Stride),
                        Ints("pads", node.Padding, node.Padding, node.Padding, node.Padding), Int("group", ShapeInference.ConvGroups(node, inC))), DataType.Float);
                }
                var output = Emit("Conv", [At(0, c), FloatWeight($"{node.Name}.weight", w, c), Initializer($"{node.Name}.bias", b, c)], Fresh(foldedBn?.Name ?? node.Name),
                    Ints("kernel_shape", node.Kernel, node.Kernel), Ints("strides", node.Stride, node.Stride),
                    Ints("pads", node.Padding, node.Padding, node.Padding, node.Padding), Int("group", ShapeInference.ConvGroups(node, inC)));
                return Typed(output, c);
            }
            case Ops.BatchNorm:
                return Typed(Emit("BatchNormalization", [At(0, c), Initializer($"{node.Name}.weight", _state[$"{node.Name}.weight"], c),
                    Initializer($"{node.Name}.bias", _state[$"{node.Name}.bias"], c), Initializer($"{node.Name}.running_mean", _state[$"{node.Name}.running_mean"], c),
                    Initializer($"{node.Name}.running_var", _state[$"{node.Name}.running_var"], c)], Fresh(node.Name), Float("epsilon", node.Epsilon > 0 ? node.Epsilon : 1e-5f)), c);
            case Ops.InstanceNorm:
                return InstanceNorm(node, In(0), shape.Channels);
            case Ops.PRelu:
                return Typed(Emit("PRelu", [At(0, c), Initializer($"{node.Name}.weight", _state[$"{node.Name}.weight"].reshape(-1, 1, 1), c)], Fresh(node.Name)), c);
            case Ops.Act:
                return Activation(node, At(0, c));
            case Ops.Add:
            {
                var sum = At(0, c);
                for (int i = 1; i < node.Inputs.Count; i++) sum = Typed(Emit("Add", [sum, At(i, c)], Fresh(node.Name)), c);
                return sum;
            }
            case Ops.Mul:
                return Typed(Emit("Mul", [At(0, c), At(1, c)], Fresh(node.Name)), c);
            case Ops.Concat:
                return Typed(Emit("Concat", node.Inputs.Select((_, i) => At(i, c)).ToArray(), Fresh(node.Name), Int("axis", 1)), c);
            case Ops.Resize:
            {
                var scales = Constant($"{node.Name}_scales", [1f, 1f, node.Scale, node.Scale], [4]);
                return Typed(Emit("Resize", [At(0, c), "", scales], Fresh(node.Name), Str("mode", "nearest"),
                    Str("coordinate_transformation_mode", "asymmetric"), Str("nearest_mode", "floor")), c);
            }
            case Ops.DepthToSpace:
                return Typed(Emit("DepthToSpace", [At(0, c)], Fresh(node.Name), Int("blocksize", node.Scale), Str("mode", node.Mode == DepthToSpaceModes.Dcr ? "DCR" : "CRD")), c);
            case Ops.SpaceToDepth:
                return Typed(Emit("SpaceToDepth", [At(0, c)], Fresh(node.Name), Int("blocksize", node.Scale)), c);
            case Ops.GlobalAvgPool:
                return Typed(Emit("GlobalAveragePool", [At(0, c)], Fresh(node.Name)), c);
            case Ops.MaxPool:
                return Typed(Emit("MaxPool", [At(0, c)], Fresh(node.Name), Ints("kernel_shape", node.Kernel, node.Kernel),
                    Ints("strides", node.Stride, node.Stride), Ints("pads", node.Padding, node.Padding, node.Padding, node.Padding)), c);
            case Ops.AvgPool:
                return Typed(Emit("AveragePool", [At(0, c)], Fresh(node.Name), Ints("kernel_shape", node.Kernel, node.Kernel),
                    Ints("strides", node.Stride, node.Stride), Ints("pads", node.Padding, node.Padding, node.Padding, node.Padding), Int("count_include_pad", 0)), c);
            case Ops.Flatten:
                return Typed(Emit("Flatten", [At(0, c)], Fresh(node.Name), Int("axis", 1)), c);
            case Ops.Linear:
            {
                var w = _state[$"{node.Name}.weight"];
                var b = node.Bias ? _state[$"{node.Name}.bias"] : zeros(w.shape[0]);
                return Typed(Emit("Gemm", [At(0, c), FloatWeight($"{node.Name}.weight", w, c), Initializer($"{node.Name}.bias", b, c)], Fresh(node.Name), Int("transB", 1)), c);
            }
            case Ops.AttentionFusion:
                return Attention(node, In(0), In(1));
            case Ops.IdentityInjection:
                return Injection(node, In(0), In(1), shape.Channels);
            default:
                throw new ExportException($"{_graph.Name}: node '{node.Name}' has op '{node.Op}', which the ONNX exporter does not support");
        }
    }

    private string Activation(GraphNode node, string x)
    {
        var c = Compute;
        string output = node.Activation switch
        {
            Activations.Relu => Emit("Relu", [x], Fresh(node.Name)),
            Activations.Relu6 => Emit("Clip", [x, Constant($"{node.Name}_min", [0f], [], c), Constant($"{node.Name}_max", [6f], [], c)], Fresh(node.Name)),
            Activations.LeakyRelu => Emit("LeakyRelu", [x], Fresh(node.Name), Float("alpha", node.Alpha)),
            Activations.HardSwish => _options.Opset >= 14
                ? Emit("HardSwish", [x], Fresh(node.Name))
                : throw new ExportException($"{_graph.Name}: node '{node.Name}' (hardswish) needs opset ≥ 14, export asked for {_options.Opset}"),
            Activations.HardSigmoid => Emit("HardSigmoid", [x], Fresh(node.Name), Float("alpha", 1f / 6), Float("beta", 0.5f)),
            Activations.Sigmoid => Emit("Sigmoid", [x], Fresh(node.Name)),
            Activations.Tanh => Emit("Tanh", [x], Fresh(node.Name)),
            _ => throw new ExportException($"{_graph.Name}: node '{node.Name}' has activation '{node.Activation}', which the ONNX exporter does not support"),
        };
        return Typed(output, c);
    }

    /// <summary>Instance normalisation without affine parameters, always in float32.</summary>
    private string InstanceNorm(GraphNode node, string x, int channels) =>
        Typed(Emit("InstanceNormalization", [Ensure(x, DataType.Float), Constant($"{node.Name}_one", Enumerable.Repeat(1f, channels).ToArray(), [channels]),
            Constant($"{node.Name}_zero", new float[channels], [channels])], Fresh(node.Name), Float("epsilon", node.Epsilon > 0 ? node.Epsilon : 1e-5f)), DataType.Float);

    /// <summary>AdaIN-style injection: InstanceNorm(x)·(1 + s) + b with [s, b] = Gemm(identity); the "+1" folds into s's bias.</summary>
    private string Injection(GraphNode node, string x, string identity, int channels)
    {
        var w = _state[$"{node.Name}.style.weight"];
        var b = _state[$"{node.Name}.style.bias"];
        var normalised = InstanceNorm(node, x, channels);
        var id = Ensure(identity, DataType.Float);
        var axes = Constant($"{node.Name}_axes", [2L, 3L]);
        string Projection(string suffix, Tensor weight, Tensor bias)
        {
            var gemm = Emit("Gemm", [id, IslandWeight($"{node.Name}.{suffix}.weight", weight, DataType.Float), Initializer($"{node.Name}.{suffix}.bias", bias, DataType.Float)], Fresh(node.Name + "_" + suffix), Int("transB", 1));
            return Emit("Unsqueeze", [gemm, axes], Fresh(node.Name + "_" + suffix));
        }
        var scale = Projection("scale", w.narrow(0, 0, channels), b.narrow(0, 0, channels).add(1));
        var shift = Projection("shift", w.narrow(0, channels, channels), b.narrow(0, channels, channels));
        var scaled = Emit("Mul", [normalised, scale], Fresh(node.Name));
        return Typed(Emit("Add", [scaled, shift], Fresh(node.Name)), DataType.Float);
    }

    /// <summary>Attention fusion: keys/values optionally average-pooled, 1×1 projections, scores = qᵀk/√inner, softmax over key positions (float32), γ·(v·attnᵀ) + target.</summary>
    private string Attention(GraphNode node, string querySource, string target)
    {
        var c = Compute;
        var shape = _shapes[node.Name];
        int inner = node.InnerChannels;
        string Project(string part, string input) => Emit("Conv", [Ensure(input, c), IslandWeight($"{node.Name}.{part}.weight", _state[$"{node.Name}.{part}.weight"], c),
            Initializer($"{node.Name}.{part}.bias", _state[$"{node.Name}.{part}.bias"], c)], Fresh($"{node.Name}_{part}"), Ints("kernel_shape", 1, 1));
        string Flat(string input, long channels, string part) => Emit("Reshape", [input, Constant($"{node.Name}_{part}_shape", [0L, channels, -1L])], Fresh($"{node.Name}_{part}"));
        int pool = node.EffectiveKeyValuePool;
        var keySource = pool > 1
            ? Typed(Emit("AveragePool", [Ensure(target, c)], Fresh($"{node.Name}_kv_pool"), Ints("kernel_shape", pool, pool), Ints("strides", pool, pool)), c)
            : target;
        var q = Flat(Project("query", querySource), inner, "q");
        var k = Flat(Project("key", keySource), inner, "k");
        var v = Flat(Project("value", keySource), shape.Channels, "v");
        _types[q] = c; _types[k] = c; _types[v] = c;
        var qt = Emit("Transpose", [Ensure(q, DataType.Float)], Fresh($"{node.Name}_qt"), Ints("perm", 0, 2, 1));
        var energy = Emit("MatMul", [qt, Ensure(k, DataType.Float)], Fresh($"{node.Name}_energy"));
        var scaled = Emit("Mul", [energy, Constant($"{node.Name}_scale", [(float)node.EffectiveAttentionScale], [])], Fresh($"{node.Name}_scaled"));
        var attention = Emit("Softmax", [scaled], Fresh($"{node.Name}_softmax"), Int("axis", -1));
        var attentionT = Typed(Emit("Transpose", [attention], Fresh($"{node.Name}_at"), Ints("perm", 0, 2, 1)), DataType.Float);
        var attended = Typed(Emit("MatMul", [Ensure(v, c), Ensure(attentionT, c)], Fresh($"{node.Name}_attended")), c);
        var spatial = Emit("Reshape", [attended, Constant($"{node.Name}_out_shape", [0L, shape.Channels, shape.Height, shape.Width])], Fresh($"{node.Name}_spatial"));
        var gamma = Emit("Mul", [spatial, Initializer($"{node.Name}.gamma", _state[$"{node.Name}.gamma"], c)], Fresh($"{node.Name}_gamma"));
        return Typed(Emit("Add", [gamma, Ensure(target, c)], Fresh(node.Name)), c);
    }

    /// <summary>A QuantizeLinear/DequantizeLinear pair after a calibrated value (UINT8, per tensor); other values pass through.</summary>
    private string QuantizeIfCalibrated(string graphValue, string onnxValue)
    {
        if (!Int8 || !_options.ActivationParams!.TryGetValue(graphValue, out var p)) return onnxValue;
        var scale = Constant($"{graphValue}_act_scale", [p.Scale], []);
        var zero = ByteConstant($"{graphValue}_act_zero", (byte)p.ZeroPoint);
        var q = Emit("QuantizeLinear", [Ensure(onnxValue, DataType.Float), scale, zero], Fresh($"{graphValue}_q"));
        _types[q] = DataType.Uint8;
        return Typed(Emit("DequantizeLinear", [q, scale, zero], Fresh($"{graphValue}_dq")), DataType.Float);
    }

    /// <summary>
    /// INT8 weights symmetric per output channel ([−127, 127], or [−63, 63] with the policy's reduced range; zero point 0) and INT32 bias with scale
    /// input_scale·weight_scale, each behind a DequantizeLinear on axis 0, the QDQ form ONNX Runtime fuses into QLinearConv.
    /// </summary>
    private (string Weight, string Bias) QuantizedWeights(GraphNode node, Tensor w, Tensor b)
    {
        if (!_options.ActivationParams!.TryGetValue(node.Inputs[0], out var input))
            throw new ExportException($"{_graph.Name}: node '{node.Name}' is quantized but its input '{node.Inputs[0]}' has no calibrated range");
        long channels = w.shape[0];
        var (weight, scales) = Int8Weight($"{node.Name}.weight", w, Fresh($"{node.Name}_wdq"), _options.Policy!.WeightLevels);
        var biasScales = scales.mul(input.Scale);
        var qb = b.div(biasScales).round().clamp(int.MinValue / 2, int.MaxValue / 2).to_type(ScalarType.Int32);

        var bq = new TensorProto { Name = $"{node.Name}.bias_q", DataType = (int)DataType.Int32 };
        bq.Dims.Add(channels);
        bq.Int32Data.AddRange(qb.data<int>().ToArray());
        _onnx.Initializer.Add(bq);
        var bScale = Initializer($"{node.Name}.bias_scale", biasScales, DataType.Float);
        var bZero = new TensorProto { Name = $"{node.Name}.bias_zero", DataType = (int)DataType.Int32 };
        bZero.Dims.Add(channels);
        bZero.Int32Data.AddRange(new int[channels]);
        _onnx.Initializer.Add(bZero);
        var bias = Emit("DequantizeLinear", [bq.Name, bScale, bZero.Name], Fresh($"{node.Name}_bdq"), Int("axis", 0));
        return (weight, bias);
    }

    private string ByteConstant(string name, byte value)
    {
        if (_onnx.Initializer.Any(i => i.Name == name)) return name;
        var t = new TensorProto { Name = name, DataType = (int)DataType.Uint8, RawData = ByteString.CopyFrom([value]) };
        _onnx.Initializer.Add(t);
        _types[name] = DataType.Uint8;
        return name;
    }

    private (Tensor W, Tensor B) FoldBatchNorm(Tensor w, Tensor b, GraphNode bn)
    {
        var gamma = _state[$"{bn.Name}.weight"];
        var beta = _state[$"{bn.Name}.bias"];
        var mean = _state[$"{bn.Name}.running_mean"];
        var variance = _state[$"{bn.Name}.running_var"];
        var factor = gamma.div(variance.add(bn.Epsilon > 0 ? bn.Epsilon : 1e-5).sqrt());
        return (w.mul(factor.view(-1, 1, 1, 1)), b.sub(mean).mul(factor).add(beta));
    }

    // ---- protobuf helpers ----

    private string Fresh(string hint) => $"{hint}_{_counter++}";

    private string Typed(string value, DataType type) { _types[value] = type; return value; }

    /// <summary>The value in the wanted type, inserting (and caching) a Cast when needed.</summary>
    private string Ensure(string value, DataType type)
    {
        if (!_types.TryGetValue(value, out var have)) have = DataType.Float;
        if (have == type) return value;
        if (_casts.TryGetValue((value, type), out var cast)) return cast;
        cast = Emit("Cast", [value], Fresh(value + (type == DataType.Float16 ? "_f16" : "_f32")), Int("to", (int)type));
        _types[cast] = type;
        return _casts[(value, type)] = cast;
    }

    private string Emit(string op, string[] inputs, string output, params AttributeProto[] attributes)
    {
        var n = new NodeProto { OpType = op, Name = output };
        n.Input.AddRange(inputs);
        n.Output.Add(output);
        n.Attribute.AddRange(attributes);
        _onnx.Node.Add(n);
        return output;
    }

    private string Initializer(string name, Tensor value, DataType type)
    {
        if (_onnx.Initializer.Any(i => i.Name == name)) return name;
        var t = new TensorProto { Name = name, DataType = (int)type };
        t.Dims.AddRange(value.shape);
        using var typed = value.contiguous().to_type(type == DataType.Float16 ? ScalarType.Float16 : ScalarType.Float32);
        var bytes = new byte[typed.NumberOfElements * typed.ElementSize];
        typed.bytes.CopyTo(bytes);
        t.RawData = ByteString.CopyFrom(bytes);
        _onnx.Initializer.Add(t);
        _types[name] = type;
        return name;
    }

    /// <summary>
    /// A weight of a kept-float conv or linear layer. In INT8 exports whose policy compacts float weights, large ones
    /// are stored as FP16 behind a Cast that ONNX Runtime folds at load: half the bytes, no run-time cost, and the op
    /// still runs in FP32.
    /// </summary>
    private string FloatWeight(string name, Tensor value, DataType type)
    {
        if (!Int8 || !_options.Policy!.CompactFloatWeights || type != DataType.Float || value.NumberOfElements < 1024) return Initializer(name, value, type);
        return HalfWeight(name, value);
    }

    private string HalfWeight(string name, Tensor value)
    {
        var half = Initializer($"{name}_fp16", value, DataType.Float16);
        return Typed(Emit("Cast", [half], name, Int("to", (int)DataType.Float)), DataType.Float);
    }

    /// <summary>
    /// A projection weight of a float island (attention fusion, identity injection). In INT8 exports the policy decides
    /// its storage: INT8 symmetric per output channel behind a DequantizeLinear on axis 0 (the op still computes in
    /// float), FP16, or FP32.
    /// </summary>
    private string IslandWeight(string name, Tensor value, DataType type)
    {
        if (!Int8 || type != DataType.Float) return Initializer(name, value, type);
        switch (_options.Policy!.IslandWeights)
        {
            case FaceFusion.Compress.Quantization.FloatIslandWeights.Fp16: return HalfWeight(name, value);
            case FaceFusion.Compress.Quantization.FloatIslandWeights.Fp32: return Initializer(name, value, type);
        }
        return Typed(Int8Weight(name, value, name).Output, DataType.Float);
    }

    /// <summary>
    /// A weight as INT8, symmetric per output channel (axis 0, zero point 0, scale = max|w|/levels as
    /// <see cref="FaceFusion.Compress.Quantization.FakeQuant.PerChannelSymmetric"/> computes it), behind a
    /// DequantizeLinear whose output is <paramref name="output"/>. Returns that output and the scales.
    /// </summary>
    private (string Output, Tensor Scales) Int8Weight(string name, Tensor value, string output, int levels = 127)
    {
        long channels = value.shape[0];
        var scales = value.abs().reshape(channels, -1).max(1).values.div((double)levels).clamp_min(1e-8);
        var shape = Enumerable.Repeat(1L, (int)value.dim()).ToArray();
        shape[0] = channels;
        var q = value.div(scales.reshape(shape)).round().clamp(-levels, levels).to_type(ScalarType.Int8);
        var wq = new TensorProto { Name = $"{name}_q", DataType = (int)DataType.Int8 };
        wq.Dims.AddRange(value.shape);
        wq.RawData = ByteString.CopyFrom(q.contiguous().bytes.ToArray());
        _onnx.Initializer.Add(wq);
        var scale = Initializer($"{name}_scale", scales, DataType.Float);
        var zero = new TensorProto { Name = $"{name}_zero", DataType = (int)DataType.Int8 };
        zero.Dims.Add(channels);
        zero.RawData = ByteString.CopyFrom(new byte[channels]);
        _onnx.Initializer.Add(zero);
        return (Emit("DequantizeLinear", [wq.Name, scale, zero.Name], output, Int("axis", 0)), scales);
    }

    private string Constant(string name, float[] values, long[] dims, DataType type = DataType.Float) =>
        Initializer(name, tensor(values, dims.Length == 0 ? [] : dims), type);

    private string Constant(string name, long[] values)
    {
        var t = new TensorProto { Name = name, DataType = (int)DataType.Int64 };
        t.Dims.Add(values.Length);
        t.Int64Data.AddRange(values);
        _onnx.Initializer.Add(t);
        _types[name] = DataType.Int64;
        return name;
    }

    private static ValueInfoProto ValueInfo(string name, DataType type, long[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
            shape.Dim.Add(d < 0 ? new TensorShapeProto.Types.Dimension { DimParam = "N" } : new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } } };
    }

    private static AttributeProto Int(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };
    private static AttributeProto Float(string name, float value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };
    private static AttributeProto Str(string name, string value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(value) };
    private static AttributeProto Ints(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(values);
        return a;
    }
}
