using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Judging;

/// <summary>
/// face-api.js's FaceRecognitionNet (a port of dlib's ResNet face descriptor) in TorchSharp: normalised
/// [N,3,150,150] RGB in, [N,128] descriptors out (not L2-normalised). Submodule names follow the TF.js manifest
/// (<c>conv32_down/conv/filters</c> is <c>conv32_down.conv.weight</c> here), so <see cref="Load"/> maps them one to one.
/// Build it through <see cref="IdentityJudge"/>; the caller that builds one disposes it.
/// </summary>
public sealed class FaceRecognitionNet : nn.Module<Tensor, Tensor>
{
    private readonly ConvLayer conv32_down;
    private readonly ResidualBlock conv32_1, conv32_2, conv32_3;
    private readonly DownBlock conv64_down;
    private readonly ResidualBlock conv64_1, conv64_2, conv64_3;
    private readonly DownBlock conv128_down;
    private readonly ResidualBlock conv128_1, conv128_2;
    private readonly DownBlock conv256_down;
    private readonly ResidualBlock conv256_1, conv256_2;
    private readonly DownBlock conv256_down_out;
    private readonly Parameter fc;

    /// <summary>An untrained network of the right shapes (zero fc); <see cref="Load"/> fills it.</summary>
    public FaceRecognitionNet() : base("face_recognition_net")
    {
        // TF 'valid' = no padding; 'same' for a 3×3 stride-1 conv = one pixel each side.
        conv32_down = new ConvLayer("conv32_down", 3, 32, kernel: 7, stride: 2, padding: 0, relu: true);
        conv32_1 = new ResidualBlock("conv32_1", 32);
        conv32_2 = new ResidualBlock("conv32_2", 32);
        conv32_3 = new ResidualBlock("conv32_3", 32);
        conv64_down = new DownBlock("conv64_down", 32, 64);
        conv64_1 = new ResidualBlock("conv64_1", 64);
        conv64_2 = new ResidualBlock("conv64_2", 64);
        conv64_3 = new ResidualBlock("conv64_3", 64);
        conv128_down = new DownBlock("conv128_down", 64, 128);
        conv128_1 = new ResidualBlock("conv128_1", 128);
        conv128_2 = new ResidualBlock("conv128_2", 128);
        conv256_down = new DownBlock("conv256_down", 128, 256);
        conv256_1 = new ResidualBlock("conv256_1", 256);
        conv256_2 = new ResidualBlock("conv256_2", 256);
        conv256_down_out = new DownBlock("conv256_down_out", 256, 256);
        fc = new Parameter(zeros(256, 128), requires_grad: false);
        RegisterComponents();
    }

    /// <summary>Normalised input [N,3,150,150] ((x − mean RGB)/255) → descriptors [N,128].</summary>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = conv32_down.call(input);
        x = nn.functional.max_pool2d(x, 3, 2);
        x = conv32_3.call(conv32_2.call(conv32_1.call(x)));
        x = conv64_down.call(x);
        x = conv64_3.call(conv64_2.call(conv64_1.call(x)));
        x = conv128_down.call(x);
        x = conv128_2.call(conv128_1.call(x));
        x = conv256_down.call(x);
        x = conv256_2.call(conv256_1.call(x));
        x = conv256_down_out.call(x);
        var pooled = x.mean([2L, 3L]);
        return pooled.matmul(fc).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Copies the manifest's tensors into the network: conv filters from TF's HWIO layout to OIHW, the rest as they
    /// are. Every parameter must be filled exactly once and every manifest tensor used, else the error names the
    /// manifest and the tensor.
    /// </summary>
    public void Load(IReadOnlyList<TfjsWeight> weights, string manifestPath)
    {
        var state = state_dict();
        var filled = new HashSet<string>();
        using var noGrad = no_grad();
        foreach (var w in weights)
        {
            string key = StateKey(w.Name);
            if (!state.TryGetValue(key, out var target))
                throw new InvalidDataException($"{manifestPath}: tensor `{w.Name}` has no place in FaceRecognitionNet");
            using var source = tensor(w.Values, w.Shape.Select(d => (long)d).ToArray());
            using var arranged = w.Name.EndsWith("/filters", StringComparison.Ordinal) ? source.permute(3, 2, 0, 1).contiguous() : source.alias();
            if (!arranged.shape.SequenceEqual(target.shape))
                throw new InvalidDataException($"{manifestPath}: tensor `{w.Name}` has shape [{string.Join(",", w.Shape)}], expected the TF layout of [{string.Join(",", target.shape)}]");
            target.copy_(arranged);
            filled.Add(key);
        }
        var missing = state.Keys.Where(k => !filled.Contains(k)).ToList();
        if (missing.Count > 0)
            throw new InvalidDataException($"{manifestPath}: no tensor for {string.Join(", ", missing.Take(5))}{(missing.Count > 5 ? ", …" : "")}");
    }

    /// <summary>TF.js tensor name → this module's state-dict key.</summary>
    internal static string StateKey(string tfName)
    {
        string key = tfName.Replace('/', '.');
        if (key.EndsWith(".conv.filters", StringComparison.Ordinal)) return key[..^".filters".Length] + ".weight";
        return key;
    }

    /// <summary>conv2d + conv bias, then a per-channel affine (<c>scale.weights</c>, <c>scale.biases</c>), then ReLU unless told not to.</summary>
    private sealed class ConvLayer : nn.Module<Tensor, Tensor>
    {
        private readonly Conv2d conv;
        private readonly ScaleLayer scale;
        private readonly bool _relu;

        public ConvLayer(string name, long inChannels, long outChannels, long kernel, long stride, long padding, bool relu) : base(name)
        {
            conv = nn.Conv2d(inChannels, outChannels, kernel, stride: stride, padding: padding, bias: true);
            scale = new ScaleLayer("scale", outChannels);
            _relu = relu;
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            using var scope = NewDisposeScope();
            var y = scale.call(conv.call(x));
            return (_relu ? nn.functional.relu(y) : y).MoveToOuterDisposeScope();
        }
    }

    /// <summary>The per-channel multiply-add that dlib's affine layer (folded batch norm) became in face-api.</summary>
    private sealed class ScaleLayer : nn.Module<Tensor, Tensor>
    {
        private readonly Parameter weights;
        private readonly Parameter biases;

        public ScaleLayer(string name, long channels) : base(name)
        {
            weights = new Parameter(ones(channels), requires_grad: false);
            biases = new Parameter(zeros(channels), requires_grad: false);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            using var scope = NewDisposeScope();
            return x.mul(weights.view(1, -1, 1, 1)).add(biases.view(1, -1, 1, 1)).MoveToOuterDisposeScope();
        }
    }

    /// <summary>3×3 'same' + ReLU → 3×3 'same' → + input → ReLU.</summary>
    private sealed class ResidualBlock : nn.Module<Tensor, Tensor>
    {
        private readonly ConvLayer conv1;
        private readonly ConvLayer conv2;

        public ResidualBlock(string name, long channels) : base(name)
        {
            conv1 = new ConvLayer("conv1", channels, channels, kernel: 3, stride: 1, padding: 1, relu: true);
            conv2 = new ConvLayer("conv2", channels, channels, kernel: 3, stride: 1, padding: 1, relu: false);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            using var scope = NewDisposeScope();
            return nn.functional.relu(conv2.call(conv1.call(x)).add(x)).MoveToOuterDisposeScope();
        }
    }

    /// <summary>
    /// 3×3 stride-2 'valid' + ReLU → 3×3 'same'; shortcut: 2×2 stride-2 'valid' average pool of the input, its channels
    /// zero-padded at the end when they double. On an even input the 'valid' conv comes out one smaller than the pool:
    /// the conv path then gets one zero row at the bottom and one zero column at the right, as face-api does.
    /// </summary>
    private sealed class DownBlock : nn.Module<Tensor, Tensor>
    {
        private readonly ConvLayer conv1;
        private readonly ConvLayer conv2;

        public DownBlock(string name, long inChannels, long outChannels) : base(name)
        {
            conv1 = new ConvLayer("conv1", inChannels, outChannels, kernel: 3, stride: 2, padding: 0, relu: true);
            conv2 = new ConvLayer("conv2", outChannels, outChannels, kernel: 3, stride: 1, padding: 1, relu: false);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            using var scope = NewDisposeScope();
            var path = conv2.call(conv1.call(x));
            var shortcut = nn.functional.avg_pool2d(x, 2, 2);
            if (path.shape[2] != shortcut.shape[2] || path.shape[3] != shortcut.shape[3])
                path = nn.functional.pad(path, [0, 1, 0, 1]); // (left, right, top, bottom)
            if (shortcut.shape[1] != path.shape[1])
                shortcut = cat([shortcut, zeros_like(shortcut)], 1);
            return nn.functional.relu(path.add(shortcut)).MoveToOuterDisposeScope();
        }
    }
}
