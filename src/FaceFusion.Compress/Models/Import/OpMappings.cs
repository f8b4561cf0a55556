using FaceFusion.Compress.Models.Graph;
using Onnx;
using static FaceFusion.Compress.Models.Import.OnnxAttributes;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Models.Import;

/// <summary>The translation of one ONNX op into graph nodes (one mapping per op type).</summary>
public interface IOnnxOpMapping
{
    /// <summary>The ONNX op types this mapping reads.</summary>
    IReadOnlyList<string> OpTypes { get; }

    /// <summary>Adds the graph node(s) for <paramref name="node"/> to <paramref name="context"/>, or throws naming the node.</summary>
    void Map(NodeProto node, ImportContext context);
}

/// <summary>Conv (dense, grouped or depthwise; square kernels, explicit symmetric pads) → <see cref="Ops.Conv"/>.</summary>
public sealed class ConvMapping : IOnnxOpMapping
{
    public IReadOnlyList<string> OpTypes => ["Conv"];

    public void Map(NodeProto node, ImportContext context)
    {
        var w = OnnxImporter.ToTorch(context.Constant(node, node.Input[1]));
        var b = node.Input.Count > 2 && node.Input[2].Length > 0 ? OnnxImporter.ToTorch(context.Constant(node, node.Input[2])) : null;
        context.Add(Build(node, context, ImportContext.NodeName(node), w, b), node.Output[0]);
    }

    /// <summary>
    /// The conv node for <paramref name="node"/>'s geometry with the given weight and bias (a slice of it, for merged
    /// convs); the tensors move into the context's weights.
    /// </summary>
    public static GraphNode Build(NodeProto node, ImportContext context, string name, Tensor weight, Tensor? bias)
    {
        var shape = weight.shape.Select(d => (int)d).ToArray();
        int group = (int)Int(node, "group", 1);
        var kernel = Ints(node, "kernel_shape") ?? [shape[2], shape[3]];
        var strides = Ints(node, "strides") ?? [1, 1];
        var pads = Ints(node, "pads") ?? [0, 0, 0, 0];
        var dilations = Ints(node, "dilations") ?? [1, 1];
        var autoPad = Str(node, "auto_pad");
        if (kernel[0] != kernel[1] || strides[0] != strides[1] || dilations.Any(d => d != 1))
            throw context.Fail(node, "only square kernels and strides without dilation are supported");
        if (autoPad is not (null or "" or "NOTSET"))
            throw context.Fail(node, $"auto_pad {autoPad} is not supported (export with explicit pads)");
        PoolMapping.CheckPads(node, context, pads);
        int inC = context.Channels(context.In(node, 0));
        bool depthwise = group > 1 && group == inC && shape[0] == inC;
        context.Weights[$"{name}.weight"] = weight;
        if (bias is not null) context.Weights[$"{name}.bias"] = bias;
        return new GraphNode
        {
            Name = name, Op = Ops.Conv, Inputs = [context.In(node, 0)], Channels = shape[0], Kernel = (int)kernel[0],
            Stride = (int)strides[0], Padding = (int)pads[0], Groups = depthwise ? 1 : group, Depthwise = depthwise,
            Bias = bias is not null,
        };
    }
}

/// <summary>BatchNormalization (inference form) → <see cref="Ops.BatchNorm"/>.</summary>
public sealed class BatchNormMapping : IOnnxOpMapping
{
    public IReadOnlyList<string> OpTypes => ["BatchNormalization"];

    public void Map(NodeProto node, ImportContext context)
    {
        var name = ImportContext.NodeName(node);
        string[] parts = ["weight", "bias", "running_mean", "running_var"];
        for (int i = 0; i < parts.Length; i++) context.Weights[$"{name}.{parts[i]}"] = OnnxImporter.ToTorch(context.Constant(node, node.Input[i + 1]));
        context.Add(new GraphNode { Name = name, Op = Ops.BatchNorm, Inputs = [context.In(node, 0)], Epsilon = Float(node, "epsilon", 1e-5f) }, node.Output[0]);
    }
}

/// <summary>InstanceNormalization without an affine part (scale 1, bias 0) → <see cref="Ops.InstanceNorm"/>.</summary>
public sealed class InstanceNormMapping : IOnnxOpMapping
{
    public IReadOnlyList<string> OpTypes => ["InstanceNormalization"];

    public void Map(NodeProto node, ImportContext context)
    {
        // The graph op has no affine parameters; an affine instance norm outside identity injection is refused.
        var scale = Floats(context.Constant(node, node.Input[1]));
        var bias = Floats(context.Constant(node, node.Input[2]));
        if (scale.Any(s => s != 1f) || bias.Any(b => b != 0f))
            throw context.Fail(node, "only instance normalisation without scale and bias (1 and 0) is supported outside identity injection");
        context.Add(new GraphNode { Name = ImportContext.NodeName(node), Op = Ops.InstanceNorm, Inputs = [context.In(node, 0)], Epsilon = Float(node, "epsilon", 1e-5f) }, node.Output[0]);
    }
}

/// <summary>PRelu with a per-channel (or single) slope → <see cref="Ops.PRelu"/>.</summary>
public sealed class PReluMapping : IOnnxOpMapping
{
    public IReadOnlyList<string> OpTypes => ["PRelu"];

    public void Map(NodeProto node, ImportContext context)
    {
        var name = ImportContext.NodeName(node);
        context.Weights[$"{name}.weight"] = OnnxImporter.ToTorch(context.Constant(node, node.Input[1])).flatten();
        context.Add(new GraphNode { Name = name, Op = Ops.PRelu, Inputs = [context.In(node, 0)] }, node.Output[0]);
    }
}

/// <summary>Relu, Sigmoid, Tanh, LeakyRelu, HardSwish, HardSigmoid (1/6, 0.5) and Clip to [0, 6] → <see cref="Ops.Act"/>.</summary>
public sealed class ActivationMapping : IOnnxOpMapping
{
    public IReadOnlyList<string> OpTypes => ["Relu", "Sigmoid", "Tanh", "LeakyRelu", "HardSwish", "HardSigmoid", "Clip"];

    public void Map(NodeProto node, ImportContext context)
    {
        var activation = node.OpType switch
        {
            "Relu" => Activations.Relu,
            "Sigmoid" => Activations.Sigmoid,
            "Tanh" => Activations.Tanh,
            "LeakyRelu" => Activations.LeakyRelu,
            "HardSwish" => Activations.HardSwish,
            "HardSigmoid" when Math.Abs(Float(node, "alpha", 0.2f) - 1f / 6) < 1e-6 && Float(node, "beta", 0.5f) == 0.5f => Activations.HardSigmoid,
            "Clip" when IsRelu6(node, context) => Activations.Relu6,
            _ => throw context.Fail(node, node.OpType == "Clip" ? "only Clip to [0, 6] (relu6) is supported" : "only HardSigmoid with alpha 1/6 and beta 0.5 is supported"),
        };
        context.Add(new GraphNode
        {
            Name = ImportContext.NodeName(node), Op = Ops.Act, Inputs = [context.In(node, 0)], Activation = activation,
            Alpha = activation == Activations.LeakyRelu ? Float(node, "alpha", 0.01f) : 0f,
        }, node.Output[0]);
    }

    private static bool IsRelu6(NodeProto node, ImportContext context)
    {
        float Bound(int i, string attribute, float fallback) => node.Input.Count > i && node.Input[i].Length > 0
            ? Floats(context.Constant(node, node.Input[i])).Single() : Float(node, attribute, fallback);
        return Bound(1, "min", float.MinValue) == 0f && Bound(2, "max", float.MaxValue) == 6f;
    }
}

/// <summary>Add and Sum of graph values → <see cref="Ops.Add"/>; Mul of two graph values → <see cref="Ops.Mul"/>.</summary>
public sealed class ElementwiseMapping : IOnnxOpMapping
{
    public IReadOnlyList<string> OpTypes => ["Add", "Sum", "Mul"];

    public void Map(NodeProto node, ImportContext context)
    {
        var inputs = node.Input.Select((_, i) => context.In(node, i)).ToList();
        if (node.OpType == "Mul" && inputs.Count != 2) throw context.Fail(node, "Mul needs two inputs");
        context.Add(new GraphNode { Name = ImportContext.NodeName(node), Op = node.OpType == "Mul" ? Ops.Mul : Ops.Add, Inputs = inputs }, node.Output[0]);
    }
}

/// <summary>Concat on the channel axis → <see cref="Ops.Concat"/>.</summary>
public sealed class ConcatMapping : IOnnxOpMapping
{
    public IReadOnlyList<string> OpTypes => ["Concat"];

    public void Map(NodeProto node, ImportContext context)
    {
        if (Int(node, "axis", 1) != 1) throw context.Fail(node, "only channel concatenation (axis 1) is supported");
        context.Add(new GraphNode { Name = ImportContext.NodeName(node), Op = Ops.Concat, Inputs = node.Input.Select((_, i) => context.In(node, i)).ToList() }, node.Output[0]);
    }
}

/// <summary>MaxPool and AveragePool (square, symmetric pads, padding not counted) → <see cref="Ops.MaxPool"/>, <see cref="Ops.AvgPool"/>; GlobalAveragePool → <see cref="Ops.GlobalAvgPool"/>.</summary>
public sealed class PoolMapping : IOnnxOpMapping
{
    public IReadOnlyList<string> OpTypes => ["MaxPool", "AveragePool", "GlobalAveragePool"];

    public void Map(NodeProto node, ImportContext context)
    {
        var name = ImportContext.NodeName(node);
        if (node.OpType == "GlobalAveragePool")
        {
            context.Add(new GraphNode { Name = name, Op = Ops.GlobalAvgPool, Inputs = [context.In(node, 0)] }, node.Output[0]);
            return;
        }
        var kernel = Ints(node, "kernel_shape") ?? throw context.Fail(node, "kernel_shape is missing");
        var strides = Ints(node, "strides") ?? [1, 1];
        var pads = Ints(node, "pads") ?? [0, 0, 0, 0];
        CheckPads(node, context, pads);
        if (kernel[0] != kernel[1] || strides[0] != strides[1]) throw context.Fail(node, "only square pooling windows and strides are supported");
        if (node.OpType == "AveragePool" && Int(node, "count_include_pad", 0) != 0 && pads.Any(p => p != 0))
            throw context.Fail(node, "padded average pooling that counts padding is not supported");
        context.Add(new GraphNode
        {
            Name = name, Op = node.OpType == "MaxPool" ? Ops.MaxPool : Ops.AvgPool, Inputs = [context.In(node, 0)],
            Kernel = (int)kernel[0], Stride = (int)strides[0], Padding = (int)pads[0],
        }, node.Output[0]);
    }

    /// <summary>
    /// ONNX pads are [top, left, bottom, right]. Symmetric begin padding gives the same result as a smaller end pad
    /// whenever the output size agrees (always, for even sizes and stride 2), so begin ≥ end is accepted.
    /// </summary>
    public static void CheckPads(NodeProto node, ImportContext context, long[] pads)
    {
        if (pads.Length != 4 || pads[0] != pads[1] || pads[2] != pads[3] || pads[2] > pads[0])
            throw context.Fail(node, $"pads [{string.Join(",", pads)}] are not supported (need equal sides, end ≤ begin)");
    }
}

/// <summary>Resize, nearest, by an integer factor on the spatial axes (asymmetric coordinates, floor) → <see cref="Ops.Resize"/>.</summary>
public sealed class ResizeMapping : IOnnxOpMapping
{
    public IReadOnlyList<string> OpTypes => ["Resize"];

    public void Map(NodeProto node, ImportContext context)
    {
        if ((Str(node, "mode") ?? "nearest") != "nearest") throw context.Fail(node, $"only nearest resizing is supported, not {Str(node, "mode")}");
        // Other coordinate modes pick different source pixels for some factors; the graph op is asymmetric + floor.
        if ((Str(node, "coordinate_transformation_mode") ?? "half_pixel") != "asymmetric" || (Str(node, "nearest_mode") ?? "round_prefer_floor") != "floor")
            throw context.Fail(node, "only coordinate_transformation_mode asymmetric with nearest_mode floor is supported");
        if (node.Input.Count < 3 || node.Input[2].Length == 0) throw context.Fail(node, "only resizing by constant scales is supported (not sizes)");
        var scales = Floats(context.Constant(node, node.Input[2]));
        if (scales.Length != 4 || scales[0] != 1 || scales[1] != 1 || scales[2] != scales[3] || scales[2] < 1 || scales[2] != MathF.Round(scales[2]))
            throw context.Fail(node, $"scales [{string.Join(",", scales)}] are not supported (need [1,1,s,s] with an integer s)");
        context.Add(new GraphNode { Name = ImportContext.NodeName(node), Op = Ops.Resize, Inputs = [context.In(node, 0)], Scale = (int)scales[2] }, node.Output[0]);
    }
}

/// <summary>DepthToSpace (CRD or DCR) and SpaceToDepth → <see cref="Ops.DepthToSpace"/>, <see cref="Ops.SpaceToDepth"/>.</summary>
public sealed class DepthSpaceMapping : IOnnxOpMapping
{
    public IReadOnlyList<string> OpTypes => ["DepthToSpace", "SpaceToDepth"];

    public void Map(NodeProto node, ImportContext context)
    {
        var name = ImportContext.NodeName(node);
        int scale = (int)Int(node, "blocksize", 0);
        if (node.OpType == "SpaceToDepth")
        {
            context.Add(new GraphNode { Name = name, Op = Ops.SpaceToDepth, Inputs = [context.In(node, 0)], Scale = scale }, node.Output[0]);
            return;
        }
        // DCR (ONNX's default) orders the channels differently from the graph's default CRD.
        var mode = Str(node, "mode") ?? "DCR";
        if (mode is not ("CRD" or "DCR")) throw context.Fail(node, $"unknown DepthToSpace mode '{mode}' (CRD or DCR)");
        context.Add(new GraphNode { Name = name, Op = Ops.DepthToSpace, Inputs = [context.In(node, 0)], Scale = scale, Mode = mode == "DCR" ? DepthToSpaceModes.Dcr : null }, node.Output[0]);
    }
}

/// <summary>Flatten, and Reshape to [N, features] → <see cref="Ops.Flatten"/>.</summary>
public sealed class FlattenMapping : IOnnxOpMapping
{
    public IReadOnlyList<string> OpTypes => ["Flatten", "Reshape"];

    public void Map(NodeProto node, ImportContext context)
    {
        if (node.OpType == "Reshape")
        {
            var target = context.Constant(node, node.Input[1]);
            if (target.Dims.Count != 1 || target.Dims[0] != 2) throw context.Fail(node, "only reshapes to [N, features] are supported");
        }
        context.Add(new GraphNode { Name = ImportContext.NodeName(node), Op = Ops.Flatten, Inputs = [context.In(node, 0)] }, node.Output[0]);
    }
}

/// <summary>Gemm with alpha = beta = 1 and no transA → <see cref="Ops.Linear"/>.</summary>
public sealed class GemmMapping : IOnnxOpMapping
{
    public IReadOnlyList<string> OpTypes => ["Gemm"];

    public void Map(NodeProto node, ImportContext context)
    {
        var name = ImportContext.NodeName(node);
        var (w, b) = Weights(node, context);
        context.Weights[$"{name}.weight"] = w;
        if (b is not null) context.Weights[$"{name}.bias"] = b;
        context.Add(new GraphNode { Name = name, Op = Ops.Linear, Inputs = [context.In(node, 0)], Channels = (int)w.shape[0], Bias = b is not null }, node.Output[0]);
    }

    /// <summary>The weight as [out, in] (nn.Linear's layout) and the bias (null without one); new tensors the caller owns.</summary>
    public static (Tensor Weight, Tensor? Bias) Weights(NodeProto node, ImportContext context)
    {
        if (Float(node, "alpha", 1f) != 1f || Float(node, "beta", 1f) != 1f || Int(node, "transA", 0) != 0)
            throw context.Fail(node, "only Gemm with alpha = beta = 1 and no transA is supported");
        var w = OnnxImporter.ToTorch(context.Constant(node, node.Input[1]));
        if (Int(node, "transB", 0) == 0)
        {
            var transposed = w.t().contiguous();
            w.Dispose();
            w = transposed;
        }
        var b = node.Input.Count > 2 && node.Input[2].Length > 0 ? OnnxImporter.ToTorch(context.Constant(node, node.Input[2])).flatten() : null;
        return (w, b);
    }
}
