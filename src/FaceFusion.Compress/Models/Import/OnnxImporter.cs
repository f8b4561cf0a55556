using FaceFusion.Compress.Models.Graph;
using Google.Protobuf;
using Onnx;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Models.Import;

/// <summary>A network imported from ONNX: its graph and its weights keyed like <see cref="GraphModule"/>'s state dict.</summary>
public sealed record ImportedNetwork(NetworkGraph Graph, Dictionary<string, Tensor> Weights, IReadOnlyDictionary<string, string> TensorToNode)
{
    /// <summary>Builds the TorchSharp module and loads the weights; the caller disposes the module. Weights are copied.</summary>
    public GraphModule BuildModule()
    {
        var module = new GraphModule(Graph);
        using (no_grad())
        {
            var state = module.state_dict();
            foreach (var (key, target) in state)
            {
                if (Weights.TryGetValue(key, out var w)) target.copy_(w.reshape(target.shape));
                else if (!key.EndsWith("num_batches_tracked"))
                    throw new InvalidDataException($"{Graph.Name}: imported weights lack '{key}'");
            }
        }
        return module;
    }
}

/// <summary>
/// Reads an ONNX CNN (Conv, BatchNormalization, Relu, PRelu, LeakyRelu, Sigmoid, Tanh, Add, Mul, Concat,
/// MaxPool, AveragePool, GlobalAveragePool, DepthToSpace (CRD or DCR), SpaceToDepth, Flatten/Reshape to [N,C], Gemm; Identity as a rename) into a graph description and weights,
/// so it runs, trains, prunes and exports like the toolkit's own networks. Other ops are refused, naming the node.
/// </summary>
public static class OnnxImporter
{
    /// <summary>
    /// Imports <paramref name="path"/>. With <paramref name="outputs"/> (ONNX tensor names), those become the graph
    /// outputs and nodes that do not feed them are dropped (e.g. a classifier's pooling head).
    /// </summary>
    public static ImportedNetwork Import(string path, string? name = null, IReadOnlyList<string>? outputs = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: ONNX file not found", path);
        ModelProto model;
        try { model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path)); }
        catch (InvalidProtocolBufferException e) { throw new InvalidDataException($"{path}: not an ONNX model ({e.Message})", e); }
        var g = model.Graph ?? throw new InvalidDataException($"{path}: ONNX model has no graph");
        var initializers = g.Initializer.ToDictionary(t => t.Name);
        var constants = new Dictionary<string, TensorProto>(initializers);
        foreach (var node in g.Node.Where(n => n.OpType == "Constant"))
            constants[node.Output[0]] = node.Attribute.First(a => a.Name == "value").T;

        var wanted = outputs ?? g.Output.Select(o => o.Name).ToList();
        var needed = Needed(g, wanted, constants);
        var nodes = new List<GraphNode>();
        var weights = new Dictionary<string, Tensor>();
        var tensorToNode = new Dictionary<string, string>();
        var inputs = new List<GraphInput>();
        foreach (var input in g.Input.Where(i => !initializers.ContainsKey(i.Name)))
        {
            var dims = input.Type.TensorType.Shape.Dim.Select(d => d.DimValue).ToArray();
            var inputName = Sanitize(input.Name);
            inputs.Add(new GraphInput(inputName, (int)(dims.Length > 1 ? dims[1] : 0), dims.Length == 4));
            tensorToNode[input.Name] = inputName;
        }
        var channels = inputs.ToDictionary(i => i.Name, i => i.Channels);

        foreach (var node in g.Node)
        {
            if (node.OpType == "Constant" || !needed.Contains(node)) continue;
            string Where() => $"{path}: node '{(node.Name.Length > 0 ? node.Name : node.Output[0])}' ({node.OpType})";
            string In(int i) => tensorToNode.TryGetValue(node.Input[i], out var n)
                ? n : throw new InvalidDataException($"{Where()}: input '{node.Input[i]}' is not produced by a supported node");
            if (node.OpType == "Identity")
            {
                // A rename (exporters use one to name an output): the tensor is its input's node.
                tensorToNode[node.Output[0]] = In(0);
                continue;
            }
            var nodeName = $"{node.OpType.ToLowerInvariant()}_{Sanitize(node.Output[0])}";
            GraphNode? added = null;
            switch (node.OpType)
            {
                case "Conv":
                {
                    var w = Tensor(constants, node.Input[1], Where);
                    var shape = w.Dims.Select(d => (int)d).ToArray();
                    int group = (int)Int(node, "group", 1);
                    var kernel = Ints(node, "kernel_shape") ?? [shape[2], shape[3]];
                    var strides = Ints(node, "strides") ?? [1, 1];
                    var pads = Ints(node, "pads") ?? [0, 0, 0, 0];
                    var dilations = Ints(node, "dilations") ?? [1, 1];
                    var autoPad = Str(node, "auto_pad");
                    if (kernel[0] != kernel[1] || strides[0] != strides[1] || dilations.Any(d => d != 1))
                        throw new InvalidDataException($"{Where()}: only square kernels and strides without dilation are supported");
                    if (autoPad is not (null or "" or "NOTSET"))
                        throw new InvalidDataException($"{Where()}: auto_pad {autoPad} is not supported (export with explicit pads)");
                    CheckPads(pads, Where);
                    int inC = channels[In(0)];
                    bool depthwise = group > 1 && group == inC && shape[0] == inC;
                    added = new GraphNode
                    {
                        Name = nodeName, Op = Ops.Conv, Inputs = [In(0)], Channels = shape[0], Kernel = (int)kernel[0],
                        Stride = (int)strides[0], Padding = (int)pads[0], Groups = depthwise ? 1 : group, Depthwise = depthwise,
                        Bias = node.Input.Count > 2 && node.Input[2].Length > 0,
                    };
                    weights[$"{nodeName}.weight"] = ToTorch(w);
                    if (added.Bias) weights[$"{nodeName}.bias"] = ToTorch(Tensor(constants, node.Input[2], Where));
                    break;
                }
                case "BatchNormalization":
                    added = new GraphNode { Name = nodeName, Op = Ops.BatchNorm, Inputs = [In(0)], Epsilon = Float(node, "epsilon", 1e-5f) };
                    weights[$"{nodeName}.weight"] = ToTorch(Tensor(constants, node.Input[1], Where));
                    weights[$"{nodeName}.bias"] = ToTorch(Tensor(constants, node.Input[2], Where));
                    weights[$"{nodeName}.running_mean"] = ToTorch(Tensor(constants, node.Input[3], Where));
                    weights[$"{nodeName}.running_var"] = ToTorch(Tensor(constants, node.Input[4], Where));
                    break;
                case "PRelu":
                    added = new GraphNode { Name = nodeName, Op = Ops.PRelu, Inputs = [In(0)] };
                    weights[$"{nodeName}.weight"] = ToTorch(Tensor(constants, node.Input[1], Where)).flatten();
                    break;
                case "Relu": added = Act(nodeName, In(0), Activations.Relu); break;
                case "Sigmoid": added = Act(nodeName, In(0), Activations.Sigmoid); break;
                case "Tanh": added = Act(nodeName, In(0), Activations.Tanh); break;
                case "LeakyRelu": added = Act(nodeName, In(0), Activations.LeakyRelu) with { Alpha = Float(node, "alpha", 0.01f) }; break;
                case "HardSwish": added = Act(nodeName, In(0), Activations.HardSwish); break;
                case "Add":
                case "Sum":
                    added = new GraphNode { Name = nodeName, Op = Ops.Add, Inputs = node.Input.Select((_, i) => In(i)).ToList() };
                    break;
                case "Mul":
                    added = new GraphNode { Name = nodeName, Op = Ops.Mul, Inputs = [In(0), In(1)] };
                    break;
                case "Concat":
                    if (Int(node, "axis", 1) != 1) throw new InvalidDataException($"{Where()}: only channel concatenation (axis 1) is supported");
                    added = new GraphNode { Name = nodeName, Op = Ops.Concat, Inputs = node.Input.Select((_, i) => In(i)).ToList() };
                    break;
                case "MaxPool":
                case "AveragePool":
                {
                    var kernel = Ints(node, "kernel_shape")!;
                    var strides = Ints(node, "strides") ?? [1, 1];
                    var pads = Ints(node, "pads") ?? [0, 0, 0, 0];
                    CheckPads(pads, Where);
                    if (node.OpType == "AveragePool" && Int(node, "count_include_pad", 0) != 0 && pads.Any(p => p != 0))
                        throw new InvalidDataException($"{Where()}: padded average pooling that counts padding is not supported");
                    added = new GraphNode
                    {
                        Name = nodeName, Op = node.OpType == "MaxPool" ? Ops.MaxPool : Ops.AvgPool, Inputs = [In(0)],
                        Kernel = (int)kernel[0], Stride = (int)strides[0], Padding = (int)pads[0],
                    };
                    break;
                }
                case "GlobalAveragePool":
                    added = new GraphNode { Name = nodeName, Op = Ops.GlobalAvgPool, Inputs = [In(0)] };
                    break;
                case "DepthToSpace":
                    // DCR (ONNX's default) orders the channels differently from the graph's CRD op.
                    var mode = Str(node, "mode") ?? "DCR"; // ONNX's default
                    if (mode is not ("CRD" or "DCR")) throw new InvalidDataException($"{Where()}: unknown DepthToSpace mode '{mode}' (CRD or DCR)");
                    added = new GraphNode { Name = nodeName, Op = Ops.DepthToSpace, Inputs = [In(0)], Scale = (int)Int(node, "blocksize", 0), Mode = mode == "DCR" ? DepthToSpaceModes.Dcr : null };
                    break;
                case "SpaceToDepth":
                    added = new GraphNode { Name = nodeName, Op = Ops.SpaceToDepth, Inputs = [In(0)], Scale = (int)Int(node, "blocksize", 0) };
                    break;
                case "Flatten":
                case "Reshape":
                    // Only the flattening kind: [N,C,H,W] → [N,C·H·W]; checked against the target shape when there is one.
                    if (node.OpType == "Reshape")
                    {
                        var target = Tensor(constants, node.Input[1], Where);
                        if (target.Dims.Count != 1 || target.Dims[0] != 2) throw new InvalidDataException($"{Where()}: only reshapes to [N, features] are supported");
                    }
                    added = new GraphNode { Name = nodeName, Op = Ops.Flatten, Inputs = [In(0)] };
                    break;
                case "Gemm":
                {
                    if (Float(node, "alpha", 1f) != 1f || Float(node, "beta", 1f) != 1f || Int(node, "transA", 0) != 0)
                        throw new InvalidDataException($"{Where()}: only Gemm with alpha = beta = 1 and no transA is supported");
                    var w = ToTorch(Tensor(constants, node.Input[1], Where));
                    if (Int(node, "transB", 0) == 0) w = w.t().contiguous();
                    added = new GraphNode { Name = nodeName, Op = Ops.Linear, Inputs = [In(0)], Channels = (int)w.shape[0], Bias = node.Input.Count > 2 };
                    weights[$"{nodeName}.weight"] = w;
                    if (added.Bias) weights[$"{nodeName}.bias"] = ToTorch(Tensor(constants, node.Input[2], Where));
                    break;
                }
                default:
                    throw new InvalidDataException($"{Where()}: op {node.OpType} is not supported by the importer");
            }
            nodes.Add(added);
            tensorToNode[node.Output[0]] = added.Name;
            var partial = new NetworkGraph { Name = "partial", Inputs = inputs, Nodes = nodes, Outputs = [] };
            channels[added.Name] = ShapeInference.Costs(partial, NominalSize(inputs, g))[^1].Output.Channels;
        }

        var graphOutputs = wanted.Select(o => tensorToNode.TryGetValue(o, out var n)
            ? new GraphOutput(Sanitize(o), n)
            : throw new InvalidDataException($"{path}: output '{o}' is not produced by the imported graph")).ToList();
        var graph = new NetworkGraph
        {
            Name = name ?? Path.GetFileNameWithoutExtension(path), Resolution = NominalSize(inputs, g),
            Inputs = inputs, Nodes = nodes, Outputs = graphOutputs,
            Metadata = new Dictionary<string, string> { ["imported_from"] = Path.GetFileName(path), ["onnx_opset"] = string.Join(",", model.OpsetImport.Select(o => o.Version)) },
        };
        graph.Validate(path);
        return new ImportedNetwork(graph, weights, tensorToNode);
    }

    private static int NominalSize(List<GraphInput> inputs, GraphProto g)
    {
        var image = g.Input.FirstOrDefault(i => i.Type.TensorType.Shape.Dim.Count == 4);
        return image is null ? 0 : (int)image.Type.TensorType.Shape.Dim[2].DimValue;
    }

    /// <summary>Nodes that contribute to the wanted outputs.</summary>
    private static HashSet<NodeProto> Needed(GraphProto g, IEnumerable<string> wanted, Dictionary<string, TensorProto> constants)
    {
        var producer = new Dictionary<string, NodeProto>();
        foreach (var n in g.Node) foreach (var o in n.Output) producer[o] = n;
        var needed = new HashSet<NodeProto>();
        var stack = new Stack<string>(wanted);
        while (stack.Count > 0)
        {
            var t = stack.Pop();
            if (constants.ContainsKey(t) || !producer.TryGetValue(t, out var n) || !needed.Add(n)) continue;
            foreach (var i in n.Input) stack.Push(i);
        }
        return needed;
    }

    private static void CheckPads(long[] pads, Func<string> where)
    {
        // ONNX pads are [top, left, bottom, right]. Symmetric begin padding gives the same result as a smaller end pad
        // whenever the output size agrees (always, for even sizes and stride 2), so begin ≥ end is accepted.
        if (pads.Length != 4 || pads[0] != pads[1] || pads[2] != pads[3] || pads[2] > pads[0])
            throw new InvalidDataException($"{where()}: pads [{string.Join(",", pads)}] are not supported (need equal sides, end ≤ begin)");
    }

    private static GraphNode Act(string name, string input, string activation) =>
        new() { Name = name, Op = Ops.Act, Inputs = [input], Activation = activation };

    private static string Sanitize(string text) =>
        new string(text.Select(c => char.IsAsciiLetterOrDigit(c) || c == '_' ? c : '_').ToArray());

    private static TensorProto Tensor(Dictionary<string, TensorProto> constants, string name, Func<string> where) =>
        constants.TryGetValue(name, out var t) ? t : throw new InvalidDataException($"{where()}: '{name}' must be a constant (initializer)");

    private static long Int(NodeProto node, string name, long fallback) => node.Attribute.FirstOrDefault(a => a.Name == name)?.I ?? fallback;
    private static float Float(NodeProto node, string name, float fallback) => node.Attribute.FirstOrDefault(a => a.Name == name)?.F ?? fallback;
    private static long[]? Ints(NodeProto node, string name) => node.Attribute.FirstOrDefault(a => a.Name == name)?.Ints.ToArray();
    private static string? Str(NodeProto node, string name) => node.Attribute.FirstOrDefault(a => a.Name == name)?.S.ToStringUtf8();

    /// <summary>Copies an ONNX float tensor (raw_data or float_data) into a new CPU tensor; the caller owns it.</summary>
    public static Tensor ToTorch(TensorProto t)
    {
        var dims = t.Dims.ToArray();
        if (t.DataType != (int)TensorProto.Types.DataType.Float)
            throw new InvalidDataException($"initializer '{t.Name}' has data type {t.DataType}; only float32 weights are supported");
        float[] values;
        if (!t.RawData.IsEmpty)
        {
            values = new float[t.RawData.Length / 4];
            Buffer.BlockCopy(t.RawData.ToByteArray(), 0, values, 0, t.RawData.Length);
        }
        else values = t.FloatData.ToArray();
        return tensor(values, dims.Length == 0 ? [values.Length] : dims);
    }
}
