using System.Text.Json;
using FaceFusion.Compress.Models.Graph;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Quantization;

/// <summary>How activation ranges move during quantization-aware training.</summary>
public enum ObserverKind
{
    /// <summary>Running extremes: the range only grows.</summary>
    MinMax,
    /// <summary>Exponential moving average of each batch's min and max (momentum <see cref="QuantSimulator.Momentum"/>).</summary>
    MovingAverage,
}

/// <summary>
/// Simulates the INT8 model that <see cref="Export.OnnxExporter"/> writes, inside a <see cref="GraphModule"/>: weights
/// of quantized convs fake-quantized symmetric per output channel, their bias rounded to the INT32 grid
/// input_scale·weight_scale, and every value the policy quantizes fake-quantized to UINT8 per tensor — each with the
/// straight-through estimator. Its buffers (and, with learnable scales, parameters) are named "{value}_scale",
/// "{value}_zero", "{value}_min", "{value}_max". Attach with <c>model.Quantization = simulator</c>; the caller disposes
/// both.
/// </summary>
public sealed class QuantSimulator : nn.Module, IQuantizationSimulator
{
    private readonly HashSet<string> _convs;
    private readonly IReadOnlyList<string> _floatNodes;
    private readonly Dictionary<string, Tensor> _scale = new(), _zero = new(), _min = new(), _max = new();

    /// <summary>The policy this simulator follows (kept float nodes, skips).</summary>
    public QuantPolicy Policy { get; }
    /// <summary>The graph values that get fake-quantized.</summary>
    public IReadOnlyCollection<string> Values => _scale.Keys;
    public ObserverKind Observer { get; }
    /// <summary>Weight of a new batch in the moving-average observer.</summary>
    public double Momentum { get; init; } = 0.01;
    /// <summary>True: scales are parameters trained with the LSQ gradient (zero points stay as calibrated); observers are off.</summary>
    public bool LearnableScales { get; }
    /// <summary>While true (and the model is training), observers update the ranges on every batch.</summary>
    public bool Observing { get; set; }

    /// <param name="graph">The (BatchNorm-folded) graph to simulate.</param>
    /// <param name="policy">Which values are quantized and how (the mixed-precision policy).</param>
    /// <param name="initial">Calibrated parameters per value (e.g. from <see cref="Calibrator"/>); every policy value must be present.</param>
    /// <param name="observer">How ranges follow the data while <see cref="Observing"/>.</param>
    /// <param name="learnableScales">See <see cref="LearnableScales"/>.</param>
    public QuantSimulator(NetworkGraph graph, QuantPolicy policy, IReadOnlyDictionary<string, QuantParams> initial,
        ObserverKind observer = ObserverKind.MovingAverage, bool learnableScales = false) : base("quantization")
    {
        Policy = policy;
        Observer = observer;
        LearnableScales = learnableScales;
        Observing = !learnableScales;
        _convs = policy.QuantizedConvs(graph).Select(n => n.Name).ToHashSet();
        _floatNodes = policy.FloatNodes(graph);
        foreach (var value in policy.QuantizedValues(graph).Order(StringComparer.Ordinal))
        {
            if (!initial.TryGetValue(value, out var p)) throw new ArgumentException($"no calibrated range for quantized value '{value}'");
            var scale = tensor(p.Scale);
            if (learnableScales)
            {
                var parameter = new Parameter(scale, requires_grad: true);
                register_parameter($"{value}_scale", parameter);
                _scale[value] = parameter;
            }
            else
            {
                register_buffer($"{value}_scale", scale);
                _scale[value] = scale;
            }
            _zero[value] = tensor((float)p.ZeroPoint);
            _min[value] = tensor(p.Dequantize(p.QMin));
            _max[value] = tensor(p.Dequantize(p.QMax));
            register_buffer($"{value}_zero", _zero[value]);
            register_buffer($"{value}_min", _min[value]);
            register_buffer($"{value}_max", _max[value]);
        }
    }

    /// <summary>The current UINT8 parameters of every quantized value (what the INT8 export uses).</summary>
    public Dictionary<string, QuantParams> ActivationParams() => _scale.Keys.ToDictionary(v => v, Params);

    private QuantParams Params(string value) =>
        new(Math.Max(_scale[value].item<float>(), 1e-8f), (int)_zero[value].item<float>(), 0, 255);

    /// <inheritdoc/>
    public Tensor Value(string name, Tensor value)
    {
        if (!_scale.TryGetValue(name, out var scale)) return value;
        if (Observing && training) Observe(name, value);
        return FakeQuantize(value, scale, _zero[name].item<float>(), 0, 255, LearnableScales);
    }

    /// <inheritdoc/>
    public Tensor FloatNodeWeight(GraphNode node, Tensor weight) => Policy.IslandWeights switch
    {
        FloatIslandWeights.Int8 => FakeQuant.PerChannelSymmetric(weight).Weight,
        FloatIslandWeights.Fp16 => HalfRoundTrip(weight),
        _ => weight,
    };

    /// <summary>FP16 storage, passed straight through: w + (fp32(fp16(w)) − w).detach().</summary>
    private static Tensor HalfRoundTrip(Tensor w) => w.add(w.to_type(ScalarType.Float16).to_type(ScalarType.Float32).sub(w).detach());

    /// <inheritdoc/>
    public Tensor? Conv(GraphNode node, Conv2d conv, Tensor input)
    {
        if (!_convs.Contains(node.Name))
        {
            // A kept-float conv: FP32 compute; the export stores its large weights as FP16 when the policy compacts them.
            if (!Policy.CompactFloatWeights || conv.weight!.NumberOfElements < 1024) return null;
            return nn.functional.conv2d(input, HalfRoundTrip(conv.weight), conv.bias, strides: [node.Stride, node.Stride],
                padding: [node.Padding, node.Padding], groups: ShapeInference.ConvGroups(node, (int)input.shape[1]));
        }
        var (weight, weightScales) = FakeQuant.PerChannelSymmetric(conv.weight!, Policy.WeightLevels);
        Tensor? bias = null;
        if (conv.bias is { } b)
        {
            // The exporter stores the bias as INT32 with scale input_scale·weight_scale: round to that grid.
            var inputScale = _scale.TryGetValue(node.Inputs[0], out var s) ? s.detach().clamp_min(1e-8) : tensor(1e-8f);
            var step = tensor(weightScales).mul(inputScale);
            var rounded = b.div(step).round().mul(step);
            bias = b.add(rounded.sub(b).detach());
        }
        return nn.functional.conv2d(input, weight, bias, strides: [node.Stride, node.Stride], padding: [node.Padding, node.Padding],
            groups: ShapeInference.ConvGroups(node, (int)input.shape[1]));
    }

    private void Observe(string name, Tensor value)
    {
        using var _ = no_grad();
        double lo = value.min().item<float>(), hi = value.max().item<float>();
        if (!double.IsFinite(lo) || !double.IsFinite(hi)) return; // a non-finite batch is skipped by the trainer; never poison the range
        double min = _min[name].item<float>(), max = _max[name].item<float>();
        (min, max) = Observer == ObserverKind.MinMax
            ? (Math.Min(min, lo), Math.Max(max, hi))
            : (min + Momentum * (lo - min), max + Momentum * (hi - max));
        var p = QuantParams.Uint8(min, max);
        _min[name].fill_(min);
        _max[name].fill_(max);
        _scale[name].fill_(p.Scale);
        _zero[name].fill_(p.ZeroPoint);
    }

    /// <summary>
    /// Fake quantization with a tensor scale: (clamp(round(x/s + z), qmin, qmax) − z)·s, the rounding passed straight
    /// through. Gradients reach x inside the range only; with <paramref name="learnable"/> the scale gets the LSQ
    /// gradient, scaled by 1/√(numel·qmax) as LSQ recommends.
    /// </summary>
    public static Tensor FakeQuantize(Tensor x, Tensor scale, float zero, int qmin, int qmax, bool learnable)
    {
        using var scope = NewDisposeScope();
        var s = scale.clamp_min(1e-8);
        if (learnable)
        {
            double g = 1.0 / Math.Sqrt(Math.Max(1, x.numel()) * qmax);
            s = s.mul(g).add(s.sub(s.mul(g)).detach());
        }
        else s = s.detach();
        var v = x.div(s).add(zero).clamp(qmin, qmax);
        var q = v.add(v.round().sub(v).detach());
        return q.sub(zero).mul(s).MoveToOuterDisposeScope();
    }

    /// <summary>What is saved beside a QAT model: the policy and the parameters of every quantized value.</summary>
    public string ToJson() => JsonSerializer.Serialize(new
    {
        format = "FaceFusion.Compress quantization",
        weights = "int8 symmetric per output channel",
        activations = "uint8 asymmetric per tensor",
        observer = Observer.ToString(),
        learnable_scales = LearnableScales,
        keep_float = Policy.KeepFloat.Order(StringComparer.Ordinal).ToArray(),
        quantize_skips = Policy.QuantizeSkips,
        island_weights = Policy.IslandWeights.ToString().ToLowerInvariant(),
        compact_float_weights = Policy.CompactFloatWeights,
        reduce_range = Policy.ReduceRange,
        int8_convs = _convs.Order(StringComparer.Ordinal).ToArray(),
        float_nodes = _floatNodes,
        values = ActivationParams().OrderBy(kv => kv.Key, StringComparer.Ordinal)
            .ToDictionary(kv => kv.Key, kv => new { scale = kv.Value.Scale, zero_point = kv.Value.ZeroPoint }),
    }, new JsonSerializerOptions { WriteIndented = true });

    /// <summary>Reads the policy and parameters written by <see cref="ToJson"/>; <paramref name="source"/> names the file in errors.</summary>
    public static (QuantPolicy Policy, Dictionary<string, QuantParams> Params) ReadJson(string json, string source)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            var root = doc.RootElement;
            if (!root.TryGetProperty("format", out var format) || format.GetString() != "FaceFusion.Compress quantization")
                throw new InvalidDataException($"{source}: not a FaceFusion.Compress quantization file");
            var policy = new QuantPolicy
            {
                KeepFloat = root.GetProperty("keep_float").EnumerateArray().Select(e => e.GetString()!).ToHashSet(),
                QuantizeSkips = root.GetProperty("quantize_skips").GetBoolean(),
                IslandWeights = root.TryGetProperty("island_weights", out var iw)
                    ? Enum.TryParse<FloatIslandWeights>(iw.GetString(), ignoreCase: true, out var parsed) ? parsed : throw new InvalidDataException($"{source}: island_weights '{iw.GetString()}': use int8, fp16 or fp32")
                    : FloatIslandWeights.Fp32,
                CompactFloatWeights = root.TryGetProperty("compact_float_weights", out var cw) && cw.GetBoolean(),
                ReduceRange = root.TryGetProperty("reduce_range", out var rr) && rr.GetBoolean(),
            };
            var values = root.GetProperty("values").EnumerateObject().ToDictionary(p => p.Name, p =>
            {
                float scale = p.Value.GetProperty("scale").GetSingle();
                int zero = p.Value.GetProperty("zero_point").GetInt32();
                if (!float.IsFinite(scale) || scale <= 0 || zero is < 0 or > 255)
                    throw new InvalidDataException($"{source}: value '{p.Name}' has an invalid scale {scale} or zero point {zero}");
                return new QuantParams(scale, zero, 0, 255);
            });
            return (policy, values);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{source}: malformed quantization file ({e.Message})", e);
        }
    }
}
