using FaceFusion.Compress.Models.Graph;
using Onnx;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Models.Import;

/// <summary>
/// The state of one ONNX import that the op and pattern mappings read and extend: the file's constants, who produces
/// and who reads each tensor, the graph nodes made so far and their weights. Tensors put in <see cref="Weights"/>
/// belong to the import result (<see cref="ImportedNetwork"/>), whose owner disposes them.
/// </summary>
public sealed class ImportContext
{
    private readonly Dictionary<string, NodeProto> _producer = new();
    private readonly ILookup<string, NodeProto> _readers;
    private readonly HashSet<string> _graphOutputs;
    private readonly Dictionary<string, int> _channels = new();
    private readonly int _resolution;

    public string Path { get; }
    public IReadOnlyDictionary<string, TensorProto> Constants { get; }
    public List<GraphInput> Inputs { get; } = [];
    public List<GraphNode> Nodes { get; } = [];
    public Dictionary<string, Tensor> Weights { get; } = new();
    /// <summary>ONNX tensor name → graph node (or graph input) that holds its value.</summary>
    public Dictionary<string, string> TensorToNode { get; } = new();

    public ImportContext(string path, GraphProto graph, IReadOnlyDictionary<string, TensorProto> constants, int resolution)
    {
        Path = path;
        Constants = constants;
        _resolution = resolution;
        foreach (var n in graph.Node) foreach (var o in n.Output) _producer[o] = n;
        _readers = graph.Node.SelectMany(n => n.Input.Select(i => (i, n))).ToLookup(p => p.i, p => p.n);
        _graphOutputs = graph.Output.Select(o => o.Name).ToHashSet();
    }

    /// <summary>Registers a graph input for the ONNX input <paramref name="onnxName"/>.</summary>
    public void AddInput(string onnxName, int channels, bool isImage)
    {
        var name = Sanitize(onnxName);
        Inputs.Add(new GraphInput(name, channels, isImage));
        TensorToNode[onnxName] = name;
        _channels[name] = channels;
    }

    /// <summary>Adds <paramref name="node"/> as the value of the ONNX tensor <paramref name="onnxOutput"/>.</summary>
    public void Add(GraphNode node, string onnxOutput)
    {
        Nodes.Add(node);
        TensorToNode[onnxOutput] = node.Name;
        var partial = new NetworkGraph { Name = "partial", Resolution = _resolution, Inputs = Inputs, Nodes = Nodes, Outputs = [] };
        _channels[node.Name] = ShapeInference.Infer(partial, _resolution > 0 ? _resolution : 64)[node.Name].Channels;
    }

    /// <summary>Channels of a graph node or input already added.</summary>
    public int Channels(string graphValue) => _channels[graphValue];

    /// <summary>The graph value of an ONNX tensor, or an error naming <paramref name="node"/>.</summary>
    public string Value(NodeProto node, string tensor) => TensorToNode.TryGetValue(tensor, out var n)
        ? n : throw Fail(node, $"input '{tensor}' is not produced by a supported node");

    /// <summary>The graph value of the node's <paramref name="index"/>-th input.</summary>
    public string In(NodeProto node, int index) => Value(node, node.Input[index]);

    /// <summary>A constant (initializer or Constant node) input, or an error naming <paramref name="node"/>.</summary>
    public TensorProto Constant(NodeProto node, string tensor) =>
        Constants.TryGetValue(tensor, out var t) ? t : throw Fail(node, $"'{tensor}' must be a constant (initializer)");

    public bool IsConstant(string tensor) => Constants.ContainsKey(tensor);

    /// <summary>The nodes that read <paramref name="tensor"/>.</summary>
    public IReadOnlyList<NodeProto> Readers(string tensor) => _readers[tensor].ToList();

    /// <summary>The only reader of <paramref name="tensor"/> when it has exactly one and is not a graph output; else null.</summary>
    public NodeProto? OnlyReader(string tensor, string? opType = null)
    {
        if (_graphOutputs.Contains(tensor)) return null;
        var readers = _readers[tensor].ToList();
        return readers.Count == 1 && (opType is null || readers[0].OpType == opType) ? readers[0] : null;
    }

    /// <summary>The producer of <paramref name="tensor"/> when it is an <paramref name="opType"/> node.</summary>
    public NodeProto? ProducedBy(string tensor, string opType) =>
        _producer.TryGetValue(tensor, out var n) && n.OpType == opType ? n : null;

    /// <summary>The graph node name for an ONNX node, unique because ONNX outputs are.</summary>
    public static string NodeName(NodeProto node, int output = 0) => $"{node.OpType.ToLowerInvariant()}_{Sanitize(node.Output[output])}";

    public string Where(NodeProto node) => $"{Path}: node '{(node.Name.Length > 0 ? node.Name : node.Output[0])}' ({node.OpType})";

    /// <summary>The one-line error for <paramref name="node"/>: "FILE: node 'NAME' (OP): cause".</summary>
    public InvalidDataException Fail(NodeProto node, string cause) => new($"{Where(node)}: {cause}");

    public static string Sanitize(string text) =>
        new string(text.Select(c => char.IsAsciiLetterOrDigit(c) || c == '_' ? c : '_').ToArray());
}

/// <summary>Attribute and constant readers shared by the mappings.</summary>
public static class OnnxAttributes
{
    public static long Int(NodeProto node, string name, long fallback) => node.Attribute.FirstOrDefault(a => a.Name == name)?.I ?? fallback;
    public static float Float(NodeProto node, string name, float fallback) => node.Attribute.FirstOrDefault(a => a.Name == name)?.F ?? fallback;
    public static long[]? Ints(NodeProto node, string name) => node.Attribute.FirstOrDefault(a => a.Name == name)?.Ints.ToArray();
    public static string? Str(NodeProto node, string name) => node.Attribute.FirstOrDefault(a => a.Name == name)?.S.ToStringUtf8();

    /// <summary>The values of an INT64 constant (int64_data or raw_data).</summary>
    public static long[] Longs(TensorProto t)
    {
        if (t.DataType != (int)TensorProto.Types.DataType.Int64)
            throw new InvalidDataException($"constant '{t.Name}' has data type {t.DataType}; int64 expected");
        if (t.RawData.IsEmpty) return t.Int64Data.ToArray();
        var values = new long[t.RawData.Length / 8];
        Buffer.BlockCopy(t.RawData.ToByteArray(), 0, values, 0, t.RawData.Length);
        return values;
    }

    /// <summary>The values of a FLOAT constant (float_data or raw_data).</summary>
    public static float[] Floats(TensorProto t)
    {
        if (t.DataType != (int)TensorProto.Types.DataType.Float)
            throw new InvalidDataException($"initializer '{t.Name}' has data type {t.DataType}; only float32 weights are supported");
        if (t.RawData.IsEmpty) return t.FloatData.ToArray();
        var values = new float[t.RawData.Length / 4];
        Buffer.BlockCopy(t.RawData.ToByteArray(), 0, values, 0, t.RawData.Length);
        return values;
    }
}
