using FaceFusion.Compress.Models.Graph;
using Onnx;
using static FaceFusion.Compress.Models.Import.OnnxAttributes;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Models.Import;

/// <summary>
/// A subgraph recognised as one graph op: its ONNX nodes, and how to add the graph node(s) once the walk reaches the
/// last of them (by then every value the subgraph reads from outside has been mapped).
/// </summary>
public sealed record PatternMatch(IReadOnlyList<NodeProto> Members, Action<ImportContext> Emit);

/// <summary>
/// The translation of a subgraph that <see cref="Export.OnnxExporter"/> writes for one graph op, where no op-by-op
/// mapping exists (e.g. attention fusion's Reshape/MatMul/Softmax). Only the exporter's exact form is recognised;
/// anything else falls through to the op mappings, which refuse what they cannot read.
/// </summary>
public interface IOnnxPatternMapping
{
    /// <summary>The op type of the node the match starts from.</summary>
    string AnchorOp { get; }

    /// <summary>The match starting at <paramref name="anchor"/>, or null when the subgraph is not this pattern.</summary>
    PatternMatch? Match(NodeProto anchor, ImportContext context);
}

/// <summary>
/// Identity injection as exported: InstanceNormalization(x; 1, 0) · Unsqueeze(Gemm(id; Ws, bs + 1)) +
/// Unsqueeze(Gemm(id; Wb, bb)) → <see cref="Ops.IdentityInjection"/> with style = Linear([Ws; Wb], [bs; bb]).
/// </summary>
public sealed class IdentityInjectionPattern : IOnnxPatternMapping
{
    public string AnchorOp => "InstanceNormalization";

    public PatternMatch? Match(NodeProto norm, ImportContext context)
    {
        if (!context.IsConstant(norm.Input[1]) || !context.IsConstant(norm.Input[2])) return null;
        if (Floats(context.Constants[norm.Input[1]]).Any(s => s != 1f) || Floats(context.Constants[norm.Input[2]]).Any(b => b != 0f)) return null;
        var mul = context.OnlyReader(norm.Output[0], "Mul");
        if (mul is null || mul.Input[0] != norm.Output[0]) return null;
        var add = context.OnlyReader(mul.Output[0], "Add");
        if (add is null || add.Input[0] != mul.Output[0]) return null;
        var (scaleGemm, scaleUnsqueeze) = Projection(mul.Input[1], context);
        var (shiftGemm, shiftUnsqueeze) = Projection(add.Input[1], context);
        if (scaleGemm is null || shiftGemm is null || scaleGemm.Input[0] != shiftGemm.Input[0]) return null;
        return new PatternMatch([norm, scaleGemm, scaleUnsqueeze!, shiftGemm, shiftUnsqueeze!, mul, add], c => Emit(c, norm, scaleGemm, shiftGemm, add));
    }

    /// <summary>An Unsqueeze on axes [2, 3] of a Gemm read only by it: [N, C] → [N, C, 1, 1].</summary>
    private static (NodeProto? Gemm, NodeProto? Unsqueeze) Projection(string tensor, ImportContext context)
    {
        var unsqueeze = context.ProducedBy(tensor, "Unsqueeze");
        if (unsqueeze is null || context.OnlyReader(tensor) is null) return (null, null);
        var axes = unsqueeze.Input.Count > 1 && context.IsConstant(unsqueeze.Input[1]) ? Longs(context.Constants[unsqueeze.Input[1]]) : Ints(unsqueeze, "axes");
        if (axes is null || !axes.SequenceEqual([2L, 3L])) return (null, null);
        var gemm = context.ProducedBy(unsqueeze.Input[0], "Gemm");
        return gemm is not null && context.OnlyReader(gemm.Output[0]) is not null ? (gemm, unsqueeze) : (null, null);
    }

    private static void Emit(ImportContext context, NodeProto norm, NodeProto scaleGemm, NodeProto shiftGemm, NodeProto add)
    {
        var name = ImportContext.NodeName(add);
        var features = context.In(norm, 0);
        int channels = context.Channels(features);
        var (ws, bs) = GemmMapping.Weights(scaleGemm, context);
        var (wb, bb) = GemmMapping.Weights(shiftGemm, context);
        if (ws.shape[0] != channels || wb.shape[0] != channels || bs is null || bb is null)
            throw context.Fail(add, $"identity injection projections must give {channels} scales and shifts with biases");
        // The exporter folds the block's "1 + s" into the scale bias; the graph op adds the 1 itself.
        using (var one = bs.sub(1f)) context.Weights[$"{name}.style.bias"] = cat(new[] { one, bb }, 0);
        context.Weights[$"{name}.style.weight"] = cat(new[] { ws, wb }, 0);
        foreach (var t in new[] { ws, wb, bs, bb }) t.Dispose();
        context.Add(new GraphNode
        {
            Name = name, Op = Ops.IdentityInjection, Inputs = [features, context.In(scaleGemm, 0)], Channels = channels,
            Epsilon = Float(norm, "epsilon", 1e-5f),
        }, add.Output[0]);
    }
}

/// <summary>
/// Attention fusion as exported: 1×1 query/key/value Convs (keys and values from an optional AveragePool of the
/// target), Reshape to [N, C, HW], Transpose, MatMul, Mul by the score scale, Softmax, Transpose, MatMul, Reshape back,
/// Mul by γ, Add of the target → <see cref="Ops.AttentionFusion"/>. Anchored at the Softmax.
/// </summary>
public sealed class AttentionPattern : IOnnxPatternMapping
{
    public string AnchorOp => "Softmax";

    public PatternMatch? Match(NodeProto softmax, ImportContext context)
    {
        if (Int(softmax, "axis", -1) is not (-1 or 2)) return null;
        // Scores: Mul(MatMul(Transpose(Reshape(Conv_q(query))), Reshape(Conv_k(keys))), scale).
        var scaled = context.ProducedBy(softmax.Input[0], "Mul");
        if (scaled is null || !context.IsConstant(scaled.Input[1]) || context.OnlyReader(scaled.Output[0]) is null) return null;
        var energy = Single(context.ProducedBy(scaled.Input[0], "MatMul"), context);
        var qt = energy is null ? null : Transposed(context.ProducedBy(energy.Input[0], "Transpose"), context);
        var (queryConv, queryFlat) = qt is null ? (null, null) : Projection(qt.Input[0], context);
        var (keyConv, keyFlat) = energy is null ? (null, null) : Projection(energy.Input[1], context);
        if (queryConv is null || keyConv is null) return null;
        // Output: Add(Mul(Reshape(MatMul(Reshape(Conv_v(keys)), Transpose(softmax))), γ), target).
        var at = Transposed(context.OnlyReader(softmax.Output[0], "Transpose"), context);
        var attended = at is null ? null : context.OnlyReader(at.Output[0], "MatMul");
        if (attended is null || attended.Input[1] != at!.Output[0]) return null;
        var (valueConv, valueFlat) = Projection(attended.Input[0], context);
        var spatial = context.OnlyReader(attended.Output[0], "Reshape");
        var gamma = spatial is null ? null : context.OnlyReader(spatial.Output[0], "Mul");
        var add = gamma is null || !context.IsConstant(gamma.Input[1]) ? null : context.OnlyReader(gamma.Output[0], "Add");
        if (valueConv is null || add is null || add.Input[0] != gamma!.Output[0] || keyConv.Input[0] != valueConv.Input[0]) return null;
        // Keys and values read the target itself or its AveragePool, which only they read.
        var target = add.Input[1];
        var pool = context.ProducedBy(keyConv.Input[0], "AveragePool");
        if (keyConv.Input[0] != target && (pool is null || pool.Input[0] != target || context.Readers(pool.Output[0]).Count != 2)) return null;
        var members = new List<NodeProto>();
        if (keyConv.Input[0] != target) members.Add(pool!);
        members.AddRange([queryConv, queryFlat!, keyConv, keyFlat!, valueConv, valueFlat!, qt!, energy!, scaled, softmax, at, attended, spatial!, gamma, add]);
        return new PatternMatch(members, c => Emit(c, queryConv, keyConv, valueConv, scaled, gamma, add, keyConv.Input[0] != target ? pool : null));
    }

    private static NodeProto? Single(NodeProto? node, ImportContext context) =>
        node is not null && context.OnlyReader(node.Output[0]) is not null ? node : null;

    /// <summary>A Transpose with perm [0, 2, 1] read by one node.</summary>
    private static NodeProto? Transposed(NodeProto? node, ImportContext context) =>
        node is not null && Ints(node, "perm") is { } perm && perm.SequenceEqual([0L, 2L, 1L]) ? Single(node, context) : null;

    /// <summary>Reshape([0, C, −1]) of a 1×1 Conv read only by it.</summary>
    private static (NodeProto? Conv, NodeProto? Reshape) Projection(string tensor, ImportContext context)
    {
        var reshape = Single(context.ProducedBy(tensor, "Reshape"), context);
        if (reshape is null || !context.IsConstant(reshape.Input[1])) return (null, null);
        var shape = Longs(context.Constants[reshape.Input[1]]);
        if (shape.Length != 3 || shape[0] != 0 || shape[2] != -1) return (null, null);
        var conv = Single(context.ProducedBy(reshape.Input[0], "Conv"), context);
        if (conv is null || (Ints(conv, "kernel_shape") is { } k && k.Any(v => v != 1)) || Int(conv, "group", 1) != 1) return (null, null);
        return (conv, reshape);
    }

    private static void Emit(ImportContext context, NodeProto queryConv, NodeProto keyConv, NodeProto valueConv, NodeProto scaled, NodeProto gamma, NodeProto add, NodeProto? pool)
    {
        var name = ImportContext.NodeName(add);
        foreach (var (part, conv) in new[] { ("query", queryConv), ("key", keyConv), ("value", valueConv) })
        {
            if (conv.Input.Count < 3 || conv.Input[2].Length == 0) throw context.Fail(conv, "attention projections need a bias");
            context.Weights[$"{name}.{part}.weight"] = OnnxImporter.ToTorch(context.Constant(conv, conv.Input[1]));
            context.Weights[$"{name}.{part}.bias"] = OnnxImporter.ToTorch(context.Constant(conv, conv.Input[2])).flatten();
        }
        context.Weights[$"{name}.gamma"] = OnnxImporter.ToTorch(context.Constant(gamma, gamma.Input[1])).flatten();
        int inner = (int)context.Constant(queryConv, queryConv.Input[1]).Dims[0];
        int pooling = pool is null ? 0 : (int)(Ints(pool, "kernel_shape") ?? [1])[0];
        if (pool is not null && (Ints(pool, "strides") ?? [1]).Any(s => s != pooling))
            throw context.Fail(pool, "attention key/value pooling must have stride equal to its kernel");
        context.Add(new GraphNode
        {
            Name = name, Op = Ops.AttentionFusion, Inputs = [context.In(queryConv, 0), context.In(add, 1)],
            InnerChannels = inner, AttentionScale = Floats(context.Constant(scaled, scaled.Input[1])).Single(), KeyValuePool = pooling,
        }, add.Output[0]);
    }
}

/// <summary>
/// Sibling convs exported merged: Conv followed by a Split on the channel axis, read only by it → one
/// <see cref="Ops.Conv"/> per Split output with its slice of the weights (exact: the outputs are concatenated).
/// Anchored at the Split.
/// </summary>
public sealed class SplitConvPattern : IOnnxPatternMapping
{
    public string AnchorOp => "Split";

    public PatternMatch? Match(NodeProto split, ImportContext context)
    {
        if (Int(split, "axis", 0) != 1) return null;
        var conv = context.ProducedBy(split.Input[0], "Conv");
        if (conv is null || context.OnlyReader(conv.Output[0]) is null) return null;
        var sizes = split.Input.Count > 1 && split.Input[1].Length > 0
            ? context.IsConstant(split.Input[1]) ? Longs(context.Constants[split.Input[1]]) : null
            : Ints(split, "split");
        var weight = context.IsConstant(conv.Input[1]) ? context.Constants[conv.Input[1]] : null;
        if (weight is null) return null;
        long channels = weight.Dims[0];
        if (sizes is null)
        {
            // Without sizes ONNX splits into equal parts.
            if (channels % split.Output.Count != 0) return null;
            sizes = Enumerable.Repeat(channels / split.Output.Count, split.Output.Count).ToArray();
        }
        if (sizes.Length != split.Output.Count || sizes.Sum() != channels) return null;
        return new PatternMatch([conv, split], c => Emit(c, conv, split, sizes));
    }

    private static void Emit(ImportContext context, NodeProto conv, NodeProto split, long[] sizes)
    {
        using var weight = OnnxImporter.ToTorch(context.Constant(conv, conv.Input[1]));
        using var bias = conv.Input.Count > 2 && conv.Input[2].Length > 0 ? OnnxImporter.ToTorch(context.Constant(conv, conv.Input[2])) : null;
        long offset = 0;
        for (int i = 0; i < sizes.Length; i++)
        {
            var w = weight.narrow(0, offset, sizes[i]).clone();
            var b = bias?.narrow(0, offset, sizes[i]).clone();
            offset += sizes[i];
            context.Add(ConvMapping.Build(conv, context, $"conv_{ImportContext.Sanitize(split.Output[i])}", w, b), split.Output[i]);
        }
    }
}
