using FaceFusion.Compress.Models.Graph;

namespace FaceFusion.Compress.Models.Architectures;

/// <summary>FaceFusion swapper IO (BRIEF §3) shared by the teacher and the student.</summary>
public static class SwapperIO
{
    public const string Target = "target", Source = "source", Output = "output", Mask = "mask";
    public const int IdentityFeatures = 512;
    /// <summary>Attention fusion only on maps of at most this many positions (cost grows with its square).</summary>
    public const int MaxAttentionPositions = 32 * 32;

    internal static void Metadata(GraphBuilder g)
    {
        g.Meta("io", "target [N,3,R,R] RGB in [-1,1] (mean 0.5, std 0.5) on the arcface_128 template; source [N,512] L2-normalised identity embedding; output [N,3,R,R] tanh; mask [N,1,R,R] sigmoid");
        g.Meta("template", "arcface_128");
        g.Meta("embedder", "fr_feature.onnx");
        g.Meta("facefusion_compatibility", DefaultCompatibility);
    }

    /// <summary>What a swapper trained on the bundled embedder is to FaceFusion.</summary>
    public const string DefaultCompatibility =
        "shape-compatible only: trained on the bundled fr_feature embeddings, which FaceFusion's recognisers do not produce; train with identity_embedder set to FaceFusion's recogniser for a drop-in swapper";

    /// <summary>The largest resolution a built-in architecture is built at: FaceFusion's swappers run at 128–1024 px, and
    /// at sizes far beyond it the attention's MAC count (quadratic in positions) overflows a 64-bit count.</summary>
    public const int MaxResolution = 2048;

    public static void CheckResolution(int resolution)
    {
        if (resolution < 32 || resolution % 16 != 0 || resolution > MaxResolution)
            throw new ArgumentException($"resolution must be a multiple of 16 and at least 32 (at most {MaxResolution}), got {resolution}");
    }
}

/// <summary>Options of the teacher generator.</summary>
public sealed record TeacherOptions
{
    /// <summary>Channels at R, R/2, R/4, R/8 and R/16 (the bottleneck).</summary>
    public int[] Widths { get; init; } = [24, 48, 96, 192, 192];
    public int BottleneckBlocks { get; init; } = 2;
    public float LeakySlope { get; init; } = 0.2f;
}

/// <summary>Options of the swapping teacher (<see cref="SwapperArchitectures.SwapTeacher"/>).</summary>
public sealed record SwapTeacherOptions
{
    /// <summary>Channels at R/2, R/4, R/8 and R/16 (the bottleneck); the full-resolution decoder level uses <see cref="FullResolutionChannels"/>.</summary>
    public int[] Widths { get; init; } = [32, 64, 128, 192];
    public int FullResolutionChannels { get; init; } = 24;
    public int BottleneckBlocks { get; init; } = 3;
    /// <summary>Channels of the narrowed target skips at R/8 and R/4 (pose and expression, too few to carry the target's face).</summary>
    public int[] SkipChannels { get; init; } = [32, 16];
    public float LeakySlope { get; init; } = 0.2f;
}

/// <summary>Options of the student generator.</summary>
public sealed record StudentOptions
{
    /// <summary>Channels at R, R/2, R/4, R/8 and R/16.</summary>
    public int[] Widths { get; init; } = [16, 24, 40, 80, 128];
    /// <summary>Expansion ratio of the inverted residuals.</summary>
    public int Expansion { get; init; } = 3;
    public int BottleneckBlocks { get; init; } = 2;
    /// <summary>relu6 (default: fuses into INT8 convs in ONNX Runtime) or hardswish (MobileNetV3's; stays float in INT8).</summary>
    public string Activation { get; init; } = Activations.Relu6;
    /// <summary>Attention fusion on the coarsest decoder level and on any other with at most this many positions (its cost grows with the square of the positions).</summary>
    public int MaxAttentionPositions { get; init; } = 16 * 16;
}

/// <summary>Builds the built-in swapper architectures as graphs.</summary>
public static class SwapperArchitectures
{
    public static readonly string[] Names = ["teacher", "student", "swap-teacher"];

    public static NetworkGraph Build(string name, int resolution) => name switch
    {
        "teacher" => Teacher(resolution),
        "swap-teacher" => SwapTeacher(resolution),
        "student" => Student(resolution),
        _ => throw new ArgumentException($"unknown architecture '{name}' (built-in: {string.Join(", ", Names)})"),
    };

    /// <summary>
    /// The teacher: a U-Net attribute encoder on the target, AdaIN-style identity injection in residual blocks at the
    /// bottleneck, a decoder with skip concatenations and attention fusion (where a map has ≤ 32×32 positions),
    /// and output (tanh) and mask (sigmoid) heads.
    /// </summary>
    public static NetworkGraph Teacher(int resolution, TeacherOptions? options = null)
    {
        SwapperIO.CheckResolution(resolution);
        var o = options ?? new TeacherOptions();
        var w = o.Widths;
        var act = Activations.LeakyRelu;
        var g = new GraphBuilder("teacher", resolution);
        SwapperIO.Metadata(g);
        var target = g.ImageInput(SwapperIO.Target, 3);
        var source = g.VectorInput(SwapperIO.Source, SwapperIO.IdentityFeatures);

        g.Stage = "encoder";
        var skips = new List<string> { g.ConvBnAct("stem", target, w[0], 3, 1, act, o.LeakySlope) };
        var x = skips[0];
        for (int level = 1; level <= 3; level++)
        {
            x = g.ConvBnAct($"enc{level}a", x, w[level], 3, 2, act, o.LeakySlope);
            x = g.ConvBnAct($"enc{level}b", x, w[level], 3, 1, act, o.LeakySlope);
            skips.Add(x);
        }
        x = g.ConvBnAct("enc4", x, w[4], 3, 2, act, o.LeakySlope);

        g.Stage = "bottleneck";
        for (int b = 0; b < o.BottleneckBlocks; b++)
        {
            var input = x;
            var y = g.Conv($"res{b}_conv1", input, w[4]);
            y = g.IdentityInjection($"res{b}_inject1", y, source);
            y = g.Act($"res{b}_act", y, act, o.LeakySlope);
            y = g.Conv($"res{b}_conv2", y, w[4]);
            y = g.IdentityInjection($"res{b}_inject2", y, source);
            x = g.Sum($"res{b}_add", input, y);
        }

        g.Stage = "decoder";
        for (int level = 3; level >= 0; level--)
        {
            int size = resolution >> level;
            var up = g.Upsample($"dec{level}_up", x);
            var skip = skips[level];
            if (size * size <= SwapperIO.MaxAttentionPositions)
                skip = g.AttentionFusion($"dec{level}_attn", up, skip, Math.Max(1, w[level] / 8));
            x = g.Concat($"dec{level}_cat", up, skip);
            x = g.ConvBnAct($"dec{level}a", x, w[level], 3, 1, act, o.LeakySlope);
            if (level <= 1) x = g.ConvBnAct($"dec{level}b", x, w[level], 3, 1, act, o.LeakySlope);
        }
        Heads(g, x, separable: false);
        return g.Build();
    }

    /// <summary>
    /// The swapping teacher: the target is encoded to R/16; the decoder renders the face from there with the source
    /// identity injected (AdaIN) in every bottleneck block and at every decoder level, so identity reaches the full
    /// resolution. The target reaches the decoder only through the bottleneck and through skips at R/8 and R/4 narrowed
    /// by 1×1 convs: enough for pose, expression and lighting, too little to copy the target's face (a full-resolution
    /// target skip lets a decoder return the target). Same IO and heads as <see cref="Teacher"/>.
    /// </summary>
    public static NetworkGraph SwapTeacher(int resolution, SwapTeacherOptions? options = null)
    {
        SwapperIO.CheckResolution(resolution);
        var o = options ?? new SwapTeacherOptions();
        var w = o.Widths;
        var act = Activations.LeakyRelu;
        float a = o.LeakySlope;
        var g = new GraphBuilder("swap-teacher", resolution);
        SwapperIO.Metadata(g);
        var target = g.ImageInput(SwapperIO.Target, 3);
        var source = g.VectorInput(SwapperIO.Source, SwapperIO.IdentityFeatures);

        g.Stage = "encoder";
        var x = g.ConvBnAct("enc0", target, w[0], 3, 2, act, a);                       // R/2
        x = g.ConvBnAct("enc1a", x, w[1], 3, 2, act, a);                               // R/4
        x = g.ConvBnAct("enc1b", x, w[1], 3, 1, act, a);
        var skip4 = g.ConvBnAct("skip4", x, o.SkipChannels[1], 1, 1, act, a);
        x = g.ConvBnAct("enc2a", x, w[2], 3, 2, act, a);                               // R/8
        x = g.ConvBnAct("enc2b", x, w[2], 3, 1, act, a);
        var skip8 = g.ConvBnAct("skip8", x, o.SkipChannels[0], 1, 1, act, a);
        x = g.ConvBnAct("enc3", x, w[3], 3, 2, act, a);                                // R/16

        g.Stage = "bottleneck";
        for (int b = 0; b < o.BottleneckBlocks; b++)
        {
            var input = x;
            var y = g.Conv($"res{b}_conv1", input, w[3]);
            y = g.IdentityInjection($"res{b}_inject1", y, source);
            y = g.Act($"res{b}_act", y, act, a);
            y = g.Conv($"res{b}_conv2", y, w[3]);
            y = g.IdentityInjection($"res{b}_inject2", y, source);
            x = g.Sum($"res{b}_add", input, y);
        }

        g.Stage = "decoder";
        // Level 3 → R/8, 2 → R/4, 1 → R/2, 0 → R. Each: upsample, [narrow skip], conv, identity injection, act, conv-bn-act.
        var skips = new Dictionary<int, string> { [3] = skip8, [2] = skip4 };
        for (int level = 3; level >= 0; level--)
        {
            int channels = level == 0 ? o.FullResolutionChannels : w[level - 1];
            var up = g.Upsample($"dec{level}_up", x);
            if (skips.TryGetValue(level, out var skip)) up = g.Concat($"dec{level}_cat", up, skip);
            x = g.Conv($"dec{level}a_conv", up, channels);
            x = g.IdentityInjection($"dec{level}a_inject", x, source);
            x = g.Act($"dec{level}a_act", x, act, a);
            x = g.ConvBnAct($"dec{level}b", x, channels, 3, 1, act, a);
        }
        Heads(g, x, separable: false);
        return g.Build();
    }

    /// <summary>
    /// The student: a MobileNetV3-lite encoder (inverted residuals with squeeze-excitation), lighter identity
    /// injection, a depthwise-separable decoder (every 3×3 in the upsampling path is depthwise 3×3 + pointwise 1×1),
    /// attention fusion, and the same IO.
    /// </summary>
    public static NetworkGraph Student(int resolution, StudentOptions? options = null)
    {
        SwapperIO.CheckResolution(resolution);
        var o = options ?? new StudentOptions();
        var w = o.Widths;
        var act = o.Activation;
        var g = new GraphBuilder("student", resolution);
        SwapperIO.Metadata(g);
        g.Meta("activation", act);
        var target = g.ImageInput(SwapperIO.Target, 3);
        var source = g.VectorInput(SwapperIO.Source, SwapperIO.IdentityFeatures);

        g.Stage = "encoder";
        var skips = new List<string> { g.ConvBnAct("stem", target, w[0], 3, 1, act) };
        var x = skips[0];
        for (int level = 1; level <= 3; level++)
        {
            x = InvertedResidual(g, $"enc{level}a", x, w[level], 2, o.Expansion, act, squeeze: level >= 2);
            if (level == 3) x = InvertedResidual(g, $"enc{level}b", x, w[level], 1, o.Expansion, act, squeeze: true);
            skips.Add(x);
        }
        x = InvertedResidual(g, "enc4", x, w[4], 2, o.Expansion, act, squeeze: true);

        g.Stage = "bottleneck";
        for (int b = 0; b < o.BottleneckBlocks; b++)
        {
            // Lighter than the teacher's: one injection per block, on the narrow features before the expansion.
            var input = x;
            var y = g.IdentityInjection($"res{b}_inject", input, source);
            y = g.Conv($"res{b}_expand", y, w[4] * 2, 1);
            y = g.BatchNorm($"res{b}_expandbn", y);
            y = g.Act($"res{b}_act1", y, act);
            y = g.DepthwiseConv($"res{b}_dw", y);
            y = g.BatchNorm($"res{b}_dwbn", y);
            y = g.Act($"res{b}_act2", y, act);
            y = g.Conv($"res{b}_project", y, w[4], 1);
            y = g.BatchNorm($"res{b}_projectbn", y);
            x = g.Sum($"res{b}_add", input, y);
        }

        g.Stage = "decoder";
        for (int level = 3; level >= 0; level--)
        {
            int size = resolution >> level;
            var up = g.Upsample($"dec{level}_up", x);
            var skip = skips[level];
            if (level == 3 || size * size <= o.MaxAttentionPositions) // the coarsest level always fuses
                skip = g.AttentionFusion($"dec{level}_attn", up, skip, Math.Max(1, w[level] / 8));
            x = g.Concat($"dec{level}_cat", up, skip);
            x = g.SeparableConv($"dec{level}", x, w[level], act);
        }
        Heads(g, x, separable: true);
        return g.Build();
    }

    private static void Heads(GraphBuilder g, string x, bool separable)
    {
        g.Stage = "head";
        if (separable)
        {
            var shared = g.DepthwiseConv("head_dw", x, bias: true);
            var rgb = g.Conv("output_conv", shared, 3, 1, bias: true);
            g.Output(SwapperIO.Output, g.Act("output_tanh", rgb, Activations.Tanh));
            var mask = g.Conv("mask_conv", shared, 1, 1, bias: true);
            g.Output(SwapperIO.Mask, g.Act("mask_sigmoid", mask, Activations.Sigmoid));
        }
        else
        {
            var rgb = g.Conv("output_conv", x, 3, 3, bias: true);
            g.Output(SwapperIO.Output, g.Act("output_tanh", rgb, Activations.Tanh));
            var mask = g.Conv("mask_conv", x, 1, 3, bias: true);
            g.Output(SwapperIO.Mask, g.Act("mask_sigmoid", mask, Activations.Sigmoid));
        }
    }

    /// <summary>MobileNetV3 inverted residual: 1×1 expand → depthwise 3×3 (stride) → [squeeze-excite] → 1×1 project (+ residual).</summary>
    private static string InvertedResidual(GraphBuilder g, string prefix, string input, int channels, int stride, int expansion, string act, bool squeeze)
    {
        int inC = g.ChannelsOf(input);
        int hidden = inC * expansion;
        var x = g.ConvBnAct($"{prefix}_expand", input, hidden, 1, 1, act);
        x = g.DepthwiseConv($"{prefix}_dw", x, 3, stride);
        x = g.BatchNorm($"{prefix}_dwbn", x);
        x = g.Act($"{prefix}_dwact", x, act);
        if (squeeze)
        {
            var s = g.GlobalPool($"{prefix}_se_pool", x);
            s = g.Conv($"{prefix}_se_reduce", s, Math.Max(8, hidden / 4), 1, bias: true);
            s = g.Act($"{prefix}_se_act", s, Activations.Relu);
            s = g.Conv($"{prefix}_se_expand", s, hidden, 1, bias: true);
            s = g.Act($"{prefix}_se_gate", s, Activations.Sigmoid);
            x = g.Multiply($"{prefix}_se_mul", x, s);
        }
        x = g.Conv($"{prefix}_project", x, channels, 1);
        x = g.BatchNorm($"{prefix}_projectbn", x);
        return stride == 1 && inC == channels ? g.Sum($"{prefix}_add", input, x) : x;
    }
}
