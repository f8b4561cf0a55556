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
/// Reads an ONNX CNN into a graph description and weights, so it runs, trains, prunes and exports like the toolkit's
/// own networks. Each ONNX op is read by one <see cref="IOnnxOpMapping"/> (Conv, BatchNormalization,
/// InstanceNormalization, activations, Add/Sum/Mul, Concat, pools, nearest Resize, DepthToSpace/SpaceToDepth,
/// Flatten/Reshape to [N,C], Gemm; Identity as a rename); the subgraphs <see cref="Export.OnnxExporter"/> writes for
/// identity injection, attention fusion and merged sibling convs are read back by an <see cref="IOnnxPatternMapping"/>
/// each, so the toolkit's own exports import into the graph they came from. Other ops are refused, naming the node.
/// </summary>
public static class OnnxImporter
{
    /// <summary>The subgraph patterns, tried before the op mappings on the nodes they claim.</summary>
    public static readonly IReadOnlyList<IOnnxPatternMapping> Patterns = [new IdentityInjectionPattern(), new AttentionPattern(), new SplitConvPattern()];

    /// <summary>The op mappings; an op type appears in at most one.</summary>
    public static readonly IReadOnlyList<IOnnxOpMapping> Mappings =
    [
        new ConvMapping(), new BatchNormMapping(), new InstanceNormMapping(), new PReluMapping(), new ActivationMapping(),
        new ElementwiseMapping(), new ConcatMapping(), new PoolMapping(), new ResizeMapping(), new DepthSpaceMapping(),
        new FlattenMapping(), new GemmMapping(),
    ];

    private static readonly Dictionary<string, IOnnxOpMapping> ByOp = Mappings.SelectMany(m => m.OpTypes.Select(op => (op, m))).ToDictionary(p => p.op, p => p.m);

    /// <summary>
    /// Imports <paramref name="path"/>. With <paramref name="outputs"/> (ONNX tensor names), those become the graph
    /// outputs and nodes that do not feed them are dropped (e.g. a classifier's pooling head). The file's
    /// metadata_props are kept in the graph's metadata. The weights are new tensors owned by the result.
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
        var context = new ImportContext(path, g, constants, NominalSize(g));
        foreach (var input in g.Input.Where(i => !initializers.ContainsKey(i.Name)))
        {
            var dims = input.Type.TensorType.Shape.Dim.Select(d => d.DimValue).ToArray();
            context.AddInput(input.Name, (int)(dims.Length > 1 ? dims[1] : 0), dims.Length == 4);
        }

        // Patterns claim their nodes first; a claimed subgraph is emitted when the walk reaches its last node.
        var claimedBy = new Dictionary<NodeProto, PatternMatch>();
        var order = g.Node.Select((n, i) => (n, i)).ToDictionary(p => p.n, p => p.i);
        foreach (var node in g.Node)
            foreach (var pattern in Patterns.Where(p => p.AnchorOp == node.OpType && !claimedBy.ContainsKey(node)))
                if (TryMatch(pattern, node, context) is { } match && match.Members.All(m => !claimedBy.ContainsKey(m)))
                    foreach (var member in match.Members) claimedBy[member] = match;

        foreach (var node in g.Node)
        {
            if (node.OpType == "Constant" || !needed.Contains(node)) continue;
            if (claimedBy.TryGetValue(node, out var match))
            {
                if (match.Members.MaxBy(m => order[m]) == node) match.Emit(context);
                continue;
            }
            if (node.OpType == "Identity")
            {
                // A rename (exporters use one to name an output): the tensor is its input's node.
                context.TensorToNode[node.Output[0]] = context.In(node, 0);
                continue;
            }
            if (!ByOp.TryGetValue(node.OpType, out var mapping))
                throw context.Fail(node, $"op {node.OpType} is not supported by the importer");
            // A node with fewer inputs than its op has is a malformed file, not a crash.
            try { mapping.Map(node, context); }
            catch (ArgumentOutOfRangeException) { throw context.Fail(node, "has fewer inputs than the op needs"); }
        }

        var graphOutputs = wanted.Select(o => context.TensorToNode.TryGetValue(o, out var n)
            ? new GraphOutput(ImportContext.Sanitize(o), n)
            : throw new InvalidDataException($"{path}: output '{o}' is not produced by the imported graph")).ToList();
        var metadata = model.MetadataProps.ToDictionary(p => p.Key, p => p.Value);
        metadata["imported_from"] = Path.GetFileName(path);
        metadata["onnx_opset"] = string.Join(",", model.OpsetImport.Select(o => o.Version));
        var graph = new NetworkGraph
        {
            Name = name ?? Path.GetFileNameWithoutExtension(path), Resolution = NominalSize(g),
            Inputs = context.Inputs, Nodes = context.Nodes, Outputs = graphOutputs, Metadata = metadata,
        };
        graph.Validate(path);
        return new ImportedNetwork(graph, context.Weights, context.TensorToNode);
    }

    /// <summary>A pattern's match; a subgraph with missing inputs is no match (the op mappings then refuse it).</summary>
    private static PatternMatch? TryMatch(IOnnxPatternMapping pattern, NodeProto node, ImportContext context)
    {
        try { return pattern.Match(node, context); }
        catch (ArgumentOutOfRangeException) { return null; }
    }

    private static int NominalSize(GraphProto g)
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

    /// <summary>Copies an ONNX float tensor (raw_data or float_data) into a new CPU tensor; the caller owns it.</summary>
    public static Tensor ToTorch(TensorProto t)
    {
        var dims = t.Dims.ToArray();
        var values = OnnxAttributes.Floats(t);
        return tensor(values, dims.Length == 0 ? [values.Length] : dims);
    }
}
