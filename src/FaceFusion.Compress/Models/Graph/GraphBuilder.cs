namespace FaceFusion.Compress.Models.Graph;

/// <summary>Appends nodes to a graph under construction; each method returns the name of the node it added.</summary>
public sealed class GraphBuilder(string name, int resolution)
{
    private readonly List<GraphNode> _nodes = [];
    private readonly List<GraphInput> _inputs = [];
    private readonly List<GraphOutput> _outputs = [];
    private readonly Dictionary<string, string> _metadata = [];

    /// <summary>Stage recorded on nodes added from now on.</summary>
    public string? Stage { get; set; }
    public int Resolution => resolution;

    public string ImageInput(string input, int channels) { _inputs.Add(new GraphInput(input, channels, true)); return input; }
    public string VectorInput(string input, int channels) { _inputs.Add(new GraphInput(input, channels, false)); return input; }
    public void Output(string output, string node) => _outputs.Add(new GraphOutput(output, node));
    public void Meta(string key, string value) => _metadata[key] = value;

    public string Add(GraphNode node)
    {
        _nodes.Add(node.Stage is null && Stage is not null ? node with { Stage = Stage } : node);
        return node.Name;
    }

    public string Conv(string node, string input, int channels, int kernel = 3, int stride = 1, bool bias = false, int groups = 1, int? padding = null) =>
        Add(new GraphNode { Name = node, Op = Ops.Conv, Inputs = [input], Channels = channels, Kernel = kernel, Stride = stride, Padding = padding ?? kernel / 2, Bias = bias, Groups = groups });

    public string Pool(string node, string input, string op, int kernel, int stride, int padding = 0) =>
        Add(new GraphNode { Name = node, Op = op, Inputs = [input], Kernel = kernel, Stride = stride, Padding = padding });

    public string DepthwiseConv(string node, string input, int kernel = 3, int stride = 1, bool bias = false) =>
        Add(new GraphNode { Name = node, Op = Ops.Conv, Inputs = [input], Depthwise = true, Kernel = kernel, Stride = stride, Padding = kernel / 2, Bias = bias });

    public string BatchNorm(string node, string input) => Add(new GraphNode { Name = node, Op = Ops.BatchNorm, Inputs = [input], Epsilon = 1e-5f });

    public string Act(string node, string input, string activation, float alpha = 0f) =>
        Add(new GraphNode { Name = node, Op = Ops.Act, Inputs = [input], Activation = activation, Alpha = alpha });

    /// <summary>conv → batchnorm → activation, named {prefix}_conv, {prefix}_bn, {prefix}_act.</summary>
    public string ConvBnAct(string prefix, string input, int channels, int kernel, int stride, string activation, float alpha = 0f)
    {
        var x = Conv($"{prefix}_conv", input, channels, kernel, stride);
        x = BatchNorm($"{prefix}_bn", x);
        return Act($"{prefix}_act", x, activation, alpha);
    }

    /// <summary>Depthwise k×k → BN → act → pointwise 1×1 → BN → act.</summary>
    public string SeparableConv(string prefix, string input, int channels, string activation, int kernel = 3, float alpha = 0f)
    {
        var x = DepthwiseConv($"{prefix}_dw", input, kernel);
        x = BatchNorm($"{prefix}_dwbn", x);
        x = Act($"{prefix}_dwact", x, activation, alpha);
        x = Conv($"{prefix}_pw", x, channels, 1);
        x = BatchNorm($"{prefix}_pwbn", x);
        return Act($"{prefix}_pwact", x, activation, alpha);
    }

    public string Sum(string node, params string[] inputs) => Add(new GraphNode { Name = node, Op = Ops.Add, Inputs = inputs });
    public string Multiply(string node, string input, string gate) => Add(new GraphNode { Name = node, Op = Ops.Mul, Inputs = [input, gate] });
    public string Concat(string node, params string[] inputs) => Add(new GraphNode { Name = node, Op = Ops.Concat, Inputs = inputs });
    public string Upsample(string node, string input, int scale = 2) => Add(new GraphNode { Name = node, Op = Ops.Resize, Inputs = [input], Scale = scale });
    public string DepthToSpace(string node, string input, int scale = 2, string? mode = null) => Add(new GraphNode { Name = node, Op = Ops.DepthToSpace, Inputs = [input], Scale = scale, Mode = mode });
    public string SpaceToDepth(string node, string input, int scale = 2) => Add(new GraphNode { Name = node, Op = Ops.SpaceToDepth, Inputs = [input], Scale = scale });
    public string GlobalPool(string node, string input) => Add(new GraphNode { Name = node, Op = Ops.GlobalAvgPool, Inputs = [input] });

    public string AttentionFusion(string node, string querySource, string target, int innerChannels) =>
        Add(new GraphNode { Name = node, Op = Ops.AttentionFusion, Inputs = [querySource, target], InnerChannels = innerChannels });

    public string IdentityInjection(string node, string features, string identity) =>
        Add(new GraphNode { Name = node, Op = Ops.IdentityInjection, Inputs = [features, identity], Epsilon = 1e-5f });

    /// <summary>Channels of an existing node or input at this point of construction.</summary>
    public int ChannelsOf(string node) => ShapeInference.Infer(Build(), resolution).TryGetValue(node, out var s)
        ? s.Channels
        : _inputs.First(i => i.Name == node).Channels;

    public NetworkGraph Build() => new()
    {
        Name = name, Resolution = resolution, Inputs = _inputs.ToList(), Nodes = _nodes.ToList(), Outputs = _outputs.ToList(),
        Metadata = new Dictionary<string, string>(_metadata),
    };
}
