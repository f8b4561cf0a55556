using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace FaceFusion.Compress.Models.Graph;

/// <summary>The operations a graph node can be. The names are the JSON values of <see cref="GraphNode.Op"/>.</summary>
public static class Ops
{
    public const string Conv = "conv";                       // Conv2d; depthwise when Depthwise, grouped when Groups > 1
    public const string BatchNorm = "batchnorm";             // BatchNorm2d on its input's channels
    public const string InstanceNorm = "instance_norm";      // per-sample, per-channel normalisation, no affine
    public const string Act = "act";                         // Activation (relu, relu6, leaky_relu, hardswish, hardsigmoid, sigmoid, tanh)
    public const string PRelu = "prelu";                     // per-channel learnable slope
    public const string Add = "add";                         // element-wise sum of 2+ inputs (residual)
    public const string Mul = "mul";                         // element-wise product; the second input may be [N,C,1,1] (gates)
    public const string Concat = "concat";                   // channel concatenation
    public const string Resize = "resize";                   // nearest-neighbour upsampling by Scale
    /// <summary>
    /// Sub-pixel upsampling by Scale r (ONNX DepthToSpace, mode CRD; PyTorch's pixel_shuffle):
    /// out[c, h·r+i, w·r+j] = in[c·r²+i·r+j, h, w]. A half-resolution conv with r²·C outputs then writes C channels at
    /// full resolution, at a quarter of a full-resolution conv's cost. With <see cref="GraphNode.Mode"/> dcr (ONNX mode
    /// DCR): in[(i·r+j)·C+c, h, w], the inverse of <see cref="SpaceToDepth"/>.
    /// </summary>
    public const string DepthToSpace = "depth_to_space";
    /// <summary>
    /// The inverse move by Scale r in ONNX SpaceToDepth's order: out[(i·r+j)·C+c, h, w] = in[c, h·r+i, w·r+j]. Brings
    /// full-resolution detail (e.g. the target image) losslessly to a lower resolution.
    /// </summary>
    public const string SpaceToDepth = "space_to_depth";
    public const string GlobalAvgPool = "global_avg_pool";   // [N,C,H,W] → [N,C,1,1]
    public const string MaxPool = "max_pool";                // Kernel, Stride, Padding
    public const string AvgPool = "avg_pool";                // Kernel, Stride, Padding
    public const string Flatten = "flatten";                 // [N,C,H,W] → [N,C·H·W]
    public const string Linear = "linear";                   // fully connected on vectors
    public const string AttentionFusion = "attention_fusion";// inputs (query source, key/value target)
    public const string IdentityInjection = "identity_injection"; // inputs (features, identity vector): AdaIN-style

    public static readonly string[] All =
    [
        Conv, BatchNorm, InstanceNorm, Act, PRelu, Add, Mul, Concat, Resize, DepthToSpace, SpaceToDepth, GlobalAvgPool,
        MaxPool, AvgPool, Flatten, Linear, AttentionFusion, IdentityInjection,
    ];
}

/// <summary>Activation names of <see cref="Ops.Act"/> nodes.</summary>
public static class Activations
{
    public const string Relu = "relu", Relu6 = "relu6", LeakyRelu = "leaky_relu", HardSwish = "hardswish",
        HardSigmoid = "hardsigmoid", Sigmoid = "sigmoid", Tanh = "tanh";
    public static readonly string[] All = [Relu, Relu6, LeakyRelu, HardSwish, HardSigmoid, Sigmoid, Tanh];
}

/// <summary>A network input: an image [N,C,R,R] (<see cref="IsImage"/>) or a vector [N,C].</summary>
public sealed record GraphInput(string Name, int Channels, bool IsImage);

/// <summary>A named graph output and the node that produces it.</summary>
public sealed record GraphOutput(string Name, string Node);

/// <summary>Channel orders of <see cref="Ops.DepthToSpace"/> (<see cref="GraphNode.Mode"/>).</summary>
public static class DepthToSpaceModes
{
    public const string Crd = "crd", Dcr = "dcr";
}

/// <summary>
/// One node: an operation with named inputs (graph inputs or earlier nodes) and an explicit output channel count.
/// Input channel counts are not stored: they follow from the inputs, so pruning edits one number per node.
/// </summary>
public sealed record GraphNode
{
    public required string Name { get; init; }
    public required string Op { get; init; }
    public required IReadOnlyList<string> Inputs { get; init; }
    /// <summary>Output channels (features for vectors). Ignored for ops whose output follows their input.</summary>
    public int Channels { get; init; }
    public int Kernel { get; init; } = 1;
    public int Stride { get; init; } = 1;
    public int Padding { get; init; }
    /// <summary>Groups of a grouped conv (1 = dense). Ignored when <see cref="Depthwise"/>.</summary>
    public int Groups { get; init; } = 1;
    /// <summary>A depthwise conv: groups = input channels = output channels, tied for pruning.</summary>
    public bool Depthwise { get; init; }
    public bool Bias { get; init; }
    /// <summary>For act nodes: one of <see cref="Activations"/>.</summary>
    public string? Activation { get; init; }
    /// <summary>Negative slope of leaky_relu.</summary>
    public float Alpha { get; init; }
    /// <summary>Upsampling factor of resize nodes; block size of depth_to_space and space_to_depth nodes.</summary>
    public int Scale { get; init; }
    /// <summary>
    /// Channel order of depth_to_space: <c>crd</c> (the default when null; ONNX mode CRD, each channel's r² sub-pixels
    /// adjacent) or <c>dcr</c> (ONNX mode DCR, sub-pixel-major: the exact inverse of space_to_depth, so element-wise
    /// work on space_to_depth'd images can stay at the low resolution).
    /// </summary>
    public string? Mode { get; init; }
    /// <summary>Query/key width of attention fusion (channels/8 by default).</summary>
    public int InnerChannels { get; init; }
    /// <summary>Attention score scale; 0 means 1/√InnerChannels. Pruning the inner channels keeps the original scale here.</summary>
    public float AttentionScale { get; init; }

    /// <summary>
    /// Attention fusion: keys and values are average-pooled over k×k cells of the target before their projections
    /// (0 or 1: every position). Cost of scores and softmax falls by k² (they grow with the square of the positions);
    /// no parameters change, so a trained checkpoint can be switched and then fine-tuned or distilled.
    /// </summary>
    public int KeyValuePool { get; init; }
    /// <summary>The effective key/value pooling factor (≥ 1).</summary>
    [JsonIgnore]
    public int EffectiveKeyValuePool => Math.Max(1, KeyValuePool);

    /// <summary>The score scale attention fusion applies.</summary>
    [JsonIgnore]
    public double EffectiveAttentionScale => AttentionScale > 0 ? AttentionScale : 1.0 / Math.Sqrt(Math.Max(1, InnerChannels));
    /// <summary>Epsilon of norms.</summary>
    public float Epsilon { get; init; }
    /// <summary>Which part of the network (stem, encoder, bottleneck, decoder, head, …): for reports and policies.</summary>
    public string? Stage { get; init; }

    public bool IsHead => Stage == "head";
}

/// <summary>
/// A network as data: inputs, nodes in execution order, outputs. It drives building the TorchSharp modules,
/// counting params/MACs, pruning, quantizer placement and ONNX export; it is saved as JSON beside the weights.
/// </summary>
public sealed record NetworkGraph
{
    /// <summary>Version of the JSON format this code writes.</summary>
    public const int CurrentFormatVersion = 1;

    public int FormatVersion { get; init; } = CurrentFormatVersion;
    public required string Name { get; init; }
    /// <summary>Spatial size the network was built and trained for (attention placement depends on it).</summary>
    public int Resolution { get; init; }
    public required IReadOnlyList<GraphInput> Inputs { get; init; }
    public required IReadOnlyList<GraphNode> Nodes { get; init; }
    public required IReadOnlyList<GraphOutput> Outputs { get; init; }
    /// <summary>Free-form facts recorded with the model (embedder, normalisation, training data note, …).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string>();

    public GraphNode Node(string name) =>
        Nodes.FirstOrDefault(n => n.Name == name) ?? throw new KeyNotFoundException($"graph '{Name}' has no node '{name}'");

    /// <summary>
    /// A copy whose attention-fusion nodes (all, or those named in <paramref name="nodes"/>) pool keys and values over
    /// <paramref name="pool"/>×<paramref name="pool"/> cells (1: no pooling). Parameters are unchanged, so the
    /// weights of this graph load into the copy. Unknown or non-attention names are an error.
    /// </summary>
    public NetworkGraph WithAttentionKeyValuePool(int pool, IReadOnlyCollection<string>? nodes = null)
    {
        if (pool < 1) throw new ArgumentException($"attention key/value pooling must be at least 1, got {pool}");
        var attention = Nodes.Where(n => n.Op == Ops.AttentionFusion).Select(n => n.Name).ToHashSet();
        var named = nodes is { Count: > 0 } ? nodes.Distinct().ToList() : (IReadOnlyCollection<string>)attention;
        var wrong = named.Where(n => !attention.Contains(n)).ToList();
        if (wrong.Count > 0)
            throw new ArgumentException($"graph '{Name}': {string.Join(", ", wrong)} {(wrong.Count == 1 ? "is not an attention node" : "are not attention nodes")} (attention nodes: {(attention.Count == 0 ? "none" : string.Join(", ", attention))})");
        return WithNodes(named.Select(n => Node(n) with { KeyValuePool = pool == 1 ? 0 : pool }));
    }

    /// <summary>A copy with nodes replaced by name.</summary>
    public NetworkGraph WithNodes(IEnumerable<GraphNode> replacements)
    {
        var map = replacements.ToDictionary(n => n.Name);
        return this with { Nodes = Nodes.Select(n => map.TryGetValue(n.Name, out var r) ? r : n).ToList() };
    }

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingDefault,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>SHA-256 of the canonical JSON of the structure (no metadata): identifies an architecture.</summary>
    public string ArchitectureHash() =>
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes((this with { Metadata = new Dictionary<string, string>() }).ToJson())))
            .ToLowerInvariant()[..16];

    /// <summary>
    /// Parses graph JSON. A newer format version is refused; older versions are migrated (none exist yet).
    /// <paramref name="source"/> names the file in errors. The graph is validated.
    /// </summary>
    public static NetworkGraph FromJson(string json, string source = "graph JSON")
    {
        int version;
        try
        {
            using var doc = JsonDocument.Parse(json);
            version = doc.RootElement.TryGetProperty("format_version", out var v) && v.TryGetInt32(out var n) ? n : 0;
        }
        catch (JsonException e) { throw new InvalidDataException($"{source}: not valid JSON ({e.Message})", e); }
        if (version > CurrentFormatVersion)
            throw new InvalidDataException($"{source}: graph format version {version} is newer than this toolkit's ({CurrentFormatVersion}); upgrade FaceFusion.Compress");
        if (version < 1)
            throw new InvalidDataException($"{source}: missing or invalid format_version (expected 1..{CurrentFormatVersion}); not a FaceFusion.Compress graph");
        NetworkGraph? graph;
        try { graph = JsonSerializer.Deserialize<NetworkGraph>(json, Json); }
        catch (JsonException e) { throw new InvalidDataException($"{source}: malformed graph ({e.Message})", e); }
        if (graph is null) throw new InvalidDataException($"{source}: empty graph");
        graph.Validate(source);
        return graph;
    }

    /// <summary>Checks names, references, ops and channel counts; throws naming the node.</summary>
    public void Validate(string source = "graph")
    {
        var known = new HashSet<string>(Inputs.Select(i => i.Name));
        foreach (var node in Nodes)
        {
            if (string.IsNullOrWhiteSpace(node.Name) || node.Name.Contains('.'))
                throw new InvalidDataException($"{source}: invalid node name '{node.Name}' (non-empty, no dots)");
            if (!Ops.All.Contains(node.Op))
                throw new InvalidDataException($"{source}: node '{node.Name}' has unknown op '{node.Op}'");
            foreach (var input in node.Inputs)
                if (!known.Contains(input))
                    throw new InvalidDataException($"{source}: node '{node.Name}' reads '{input}', which is not an input or an earlier node");
            if (!known.Add(node.Name)) throw new InvalidDataException($"{source}: duplicate node name '{node.Name}'");
            if (node.Op == Ops.Act && !Activations.All.Contains(node.Activation ?? ""))
                throw new InvalidDataException($"{source}: node '{node.Name}' has unknown activation '{node.Activation}'");
            if (node.Mode is not null && (node.Op != Ops.DepthToSpace || node.Mode is not (DepthToSpaceModes.Crd or DepthToSpaceModes.Dcr)))
                throw new InvalidDataException(node.Op != Ops.DepthToSpace
                    ? $"{source}: node '{node.Name}' ({node.Op}) has a mode; only depth_to_space nodes have one"
                    : $"{source}: node '{node.Name}' has unknown depth_to_space mode '{node.Mode}' (crd or dcr)");
        }
        foreach (var output in Outputs)
            if (!known.Contains(output.Node))
                throw new InvalidDataException($"{source}: output '{output.Name}' refers to unknown node '{output.Node}'");
        _ = ShapeInference.Infer(this, Resolution > 0 ? Resolution : 64);
    }
}
