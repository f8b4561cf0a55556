using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Models.Graph;

/// <summary>
/// Attention fusion (BRIEF §1): query from the identity-conditioned features, key and value from the target
/// features through 1×1 convs, softmax attention over positions, output = gamma · attended + target, with gamma a
/// learnable scalar that starts at 0 so the block begins as the identity on the target path. Scores are scaled by
/// 1/√inner (as in scaled dot-product attention) to keep the softmax out of saturation at init. With a key/value
/// pool k &gt; 1, keys and values come from the target average-pooled over k×k cells (every query position still
/// gets an output): the scores' cost, quadratic in the positions, falls by k².
/// </summary>
public sealed class AttentionFusionBlock : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly Conv2d query;
    private readonly Conv2d key;
    private readonly Conv2d value;
    private readonly Parameter gamma;
    private readonly double _scale;
    private readonly int _keyValuePool;

    /// <summary>Applied to the projection weights in forward (quantization simulation); null: the weights as they are.</summary>
    public Func<Tensor, Tensor>? WeightTransform { get; set; }

    public AttentionFusionBlock(string name, int queryChannels, int targetChannels, int innerChannels, double? scale = null, int keyValuePool = 1) : base(name)
    {
        query = nn.Conv2d(queryChannels, innerChannels, 1);
        key = nn.Conv2d(targetChannels, innerChannels, 1);
        value = nn.Conv2d(targetChannels, targetChannels, 1);
        gamma = nn.Parameter(zeros(1));
        _scale = scale ?? 1.0 / Math.Sqrt(innerChannels);
        _keyValuePool = Math.Max(1, keyValuePool);
        RegisterComponents();
    }

    /// <summary>Query source [N,Cq,H,W] and target [N,C,H,W] → [N,C,H,W]. Returned tensor belongs to the caller.</summary>
    public override Tensor forward(Tensor querySource, Tensor target)
    {
        using var scope = NewDisposeScope();
        long n = target.shape[0], c = target.shape[1], h = target.shape[2], w = target.shape[3];
        Tensor Project(Conv2d conv, Tensor x) => WeightTransform is { } t ? nn.functional.conv2d(x, t(conv.weight!), conv.bias) : conv.call(x);
        var q = Project(query, querySource).flatten(2);         // [N, inner, HW]
        // Pooling before the 1×1 projections equals pooling after them (both linear, bias per channel) and is cheaper.
        var keySource = _keyValuePool > 1 ? nn.functional.avg_pool2d(target, _keyValuePool, _keyValuePool) : target;
        var k = Project(key, keySource).flatten(2);             // [N, inner, HW/p²]
        var v = Project(value, keySource).flatten(2);           // [N, C, HW/p²]
        var energy = bmm(q.transpose(1, 2), k).mul(_scale);     // [N, HW(query), HW/p²(key)]
        var attention = energy.softmax(-1);
        var attended = bmm(v, attention.transpose(1, 2)).view(n, c, h, w);
        return attended.mul(gamma).add(target).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Identity injection, AdaIN-style: the features are instance-normalised, then scaled by (1 + s) and shifted by b,
/// where [s, b] = Linear(identity embedding) gives one scale and one shift per channel.
/// </summary>
public sealed class IdentityInjectionBlock : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly Linear style;
    private readonly float _epsilon;

    /// <summary>Applied to the style weight in forward (quantization simulation); null: the weight as it is.</summary>
    public Func<Tensor, Tensor>? WeightTransform { get; set; }

    public IdentityInjectionBlock(string name, int identityFeatures, int channels, float epsilon) : base(name)
    {
        style = nn.Linear(identityFeatures, 2 * channels);
        _epsilon = epsilon;
        RegisterComponents();
        using (no_grad())
        {
            // Start close to plain instance normalisation; the identity path grows during training.
            style.weight!.mul_(0.1);
            style.bias!.zero_();
        }
    }

    public override Tensor forward(Tensor features, Tensor identity)
    {
        using var scope = NewDisposeScope();
        var projected = WeightTransform is { } t ? nn.functional.linear(identity, t(style.weight!), style.bias) : style.call(identity);
        var parts = projected.unsqueeze(-1).unsqueeze(-1).chunk(2, 1);
        var normalised = GraphOps.InstanceNorm(features, _epsilon);
        return normalised.mul(parts[0].add(1)).add(parts[1]).MoveToOuterDisposeScope();
    }
}

/// <summary>Parameter-free operations shared by the graph runner and the blocks.</summary>
public static class GraphOps
{
    /// <summary>Per-sample, per-channel normalisation over positions with the biased variance (as ONNX InstanceNormalization).</summary>
    public static Tensor InstanceNorm(Tensor x, float epsilon)
    {
        using var scope = NewDisposeScope();
        var mean = x.mean([2, 3], keepdim: true);
        var variance = x.var([2, 3], unbiased: false, keepdim: true);
        return x.sub(mean).div(variance.add(epsilon).sqrt()).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// [N, C·r², H, W] → [N, C, H·r, W·r] with out[c, h·r+i, w·r+j] = in[c·r²+i·r+j, h, w] (ONNX DepthToSpace, CRD), or
    /// with <paramref name="dcr"/> = in[(i·r+j)·C+c, h, w] (mode DCR: the inverse of <see cref="SpaceToDepth"/>).
    /// </summary>
    public static Tensor DepthToSpace(Tensor x, int r, bool dcr = false)
    {
        using var scope = NewDisposeScope();
        long n = x.shape[0], c = x.shape[1] / (r * r), h = x.shape[2], w = x.shape[3];
        var moved = dcr ? x.reshape(n, r, r, c, h, w).permute(0, 3, 4, 1, 5, 2) : x.reshape(n, c, r, r, h, w).permute(0, 1, 4, 2, 5, 3);
        return moved.reshape(n, c, h * r, w * r).MoveToOuterDisposeScope();
    }

    /// <summary>[N, C, H·r, W·r] → [N, r²·C, H, W] with out[(i·r+j)·C+c, h, w] = in[c, h·r+i, w·r+j] (ONNX SpaceToDepth).</summary>
    public static Tensor SpaceToDepth(Tensor x, int r)
    {
        using var scope = NewDisposeScope();
        long n = x.shape[0], c = x.shape[1], h = x.shape[2] / r, w = x.shape[3] / r;
        return x.reshape(n, c, h, r, w, r).permute(0, 3, 5, 1, 2, 4).reshape(n, r * r * c, h, w).MoveToOuterDisposeScope();
    }

    public static Tensor Activate(Tensor x, string activation, float alpha) => activation switch
    {
        Activations.Relu => nn.functional.relu(x),
        Activations.Relu6 => nn.functional.relu6(x),
        Activations.LeakyRelu => nn.functional.leaky_relu(x, alpha),
        Activations.HardSwish => nn.functional.hardswish(x),
        Activations.HardSigmoid => nn.functional.hardsigmoid(x),
        Activations.Sigmoid => x.sigmoid(),
        Activations.Tanh => x.tanh(),
        _ => throw new InvalidOperationException($"unknown activation '{activation}'"),
    };
}
