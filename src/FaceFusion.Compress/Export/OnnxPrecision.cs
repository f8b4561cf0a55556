using Onnx;

namespace FaceFusion.Compress.Export;

/// <summary>What an ONNX file's graph computes in, and why that was concluded.</summary>
/// <param name="Precision">"int8", "fp16" or "fp32".</param>
/// <param name="Evidence">The nodes or initializers that decided it, for messages.</param>
/// <param name="MetadataPrecision">The file's `precision` metadata when present (a hint only: other quantizers copy the
/// FP32 file's metadata unchanged).</param>
public sealed record DetectedPrecision(string Precision, string Evidence, string? MetadataPrecision)
{
    /// <summary>True when the metadata names a precision the graph does not have.</summary>
    public bool MetadataDisagrees => MetadataPrecision is not null && MetadataPrecision != Precision;
}

/// <summary>
/// Reads an ONNX model's precision from its graph: integer arithmetic (QuantizeLinear, QLinear*, ConvInteger,
/// MatMulInteger, DynamicQuantizeLinear) or 8-bit initializers make it "int8"; float16 initializers or float16 graph
/// inputs make it "fp16"; otherwise "fp32". Works on any producer's file (ffc, ONNX Runtime's quantizer, others).
/// </summary>
public static class OnnxPrecision
{
    private static readonly HashSet<string> IntegerOps =
        ["QuantizeLinear", "DynamicQuantizeLinear", "QLinearConv", "QLinearMatMul", "QLinearAdd", "QLinearMul", "QLinearConcat",
         "QLinearSigmoid", "QLinearLeakyRelu", "QLinearAveragePool", "QLinearGlobalAveragePool", "QLinearSoftmax", "ConvInteger", "MatMulInteger"];

    private static readonly HashSet<int> EightBit = [(int)TensorProto.Types.DataType.Int8, (int)TensorProto.Types.DataType.Uint8];

    public static DetectedPrecision Detect(string path) => Detect(Read(path));

    /// <summary>Parses an ONNX file; a file that is not one is an error naming it.</summary>
    public static ModelProto Read(string path)
    {
        try { return ModelProto.Parser.ParseFrom(File.ReadAllBytes(path)); }
        catch (Google.Protobuf.InvalidProtocolBufferException e) { throw new InvalidDataException($"{path}: not an ONNX model ({e.Message})", e); }
    }

    public static DetectedPrecision Detect(ModelProto model)
    {
        var hint = model.MetadataProps.FirstOrDefault(p => p.Key == "precision")?.Value?.ToLowerInvariant();
        var nodes = AllNodes(model.Graph).ToList();
        var integer = nodes.Where(n => IntegerOps.Contains(n.OpType) && (n.Domain is "" or "ai.onnx" or "com.microsoft")).ToList();
        var initializers = AllGraphs(model.Graph).SelectMany(g => g.Initializer).ToList();
        var eightBit = initializers.Count(t => EightBit.Contains(t.DataType));
        if (integer.Count > 0)
            return new("int8", $"{integer.Count} integer nodes ({string.Join(", ", integer.GroupBy(n => n.OpType).OrderByDescending(g => g.Count()).Select(g => $"{g.Key} ×{g.Count()}"))}), {eightBit} 8-bit initializers", hint);
        if (eightBit > 0)
            return new("int8", $"{eightBit} 8-bit initializers (weights dequantized at run time)", hint);
        var half = initializers.Count(t => t.DataType == (int)TensorProto.Types.DataType.Float16);
        var halfInputs = model.Graph.Input.Count(i => i.Type?.TensorType?.ElemType == (int)TensorProto.Types.DataType.Float16);
        var single = initializers.Count(t => t.DataType == (int)TensorProto.Types.DataType.Float);
        if (half > single || halfInputs > 0)
            return new("fp16", $"{half} float16 initializers against {single} float32, {halfInputs} float16 inputs", hint);
        return new("fp32", $"{single} float32 initializers, no integer or float16 arithmetic", hint);
    }

    private static IEnumerable<GraphProto> AllGraphs(GraphProto graph)
    {
        yield return graph;
        foreach (var node in graph.Node)
            foreach (var attribute in node.Attribute)
            {
                if (attribute.G is { } g) foreach (var sub in AllGraphs(g)) yield return sub;
                foreach (var gs in attribute.Graphs) foreach (var sub in AllGraphs(gs)) yield return sub;
            }
    }

    private static IEnumerable<NodeProto> AllNodes(GraphProto graph) => AllGraphs(graph).SelectMany(g => g.Node);
}
