using FaceFusion.Compress.Assets;
using FaceFusion.Compress.Export;
using FaceFusion.Compress.Models.Checkpoints;
using FaceFusion.Compress.Models.Graph;
using FaceFusion.Compress.Training;
using Onnx;

namespace FaceFusion.Compress.Quantization;

/// <summary>A BatchNorm-folded model with its simulator attached, and the sensitivity rows when the sensitivity mode chose the policy.</summary>
public sealed record PreparedQat(GraphModule Model, QuantSimulator Simulator, List<QuantSensitivityRow>? Sensitivity);

/// <summary>
/// Preparing, saving, reloading and exporting quantization-aware models. A QAT model folder is an ordinary checkpoint
/// of the BatchNorm-folded network plus `quantization.json` (policy and the UINT8 parameters of every quantized value).
/// </summary>
public static class QuantizationAware
{
    public const string FileName = "quantization.json";

    public static CalibrationMethod ParseMethod(string text) => text switch
    {
        "minmax" => CalibrationMethod.MinMax,
        "percentile" => CalibrationMethod.Percentile,
        "entropy" => CalibrationMethod.Entropy,
        _ => throw new ArgumentException($"calibration method '{text}': use minmax, percentile or entropy"),
    };

    /// <summary>The policy a QAT config asks for; unknown node names are refused.</summary>
    public static QuantPolicy Policy(NetworkGraph graph, QatConfig config)
    {
        foreach (var name in config.KeepFloat)
            if (graph.Nodes.All(n => n.Name != name || n.Op != Ops.Conv))
                throw new ArgumentException($"qat.keep_float: '{name}' is not a conv node of '{graph.Name}'");
        var islands = config.IslandWeights switch
        {
            "int8" => FloatIslandWeights.Int8, "fp16" => FloatIslandWeights.Fp16, "fp32" => FloatIslandWeights.Fp32,
            _ => throw new ArgumentException($"island weights '{config.IslandWeights}': use int8, fp16 or fp32"),
        };
        return new QuantPolicy { KeepFloat = config.KeepFloat.ToHashSet(), QuantizeSkips = config.Int8Skips, IslandWeights = islands, ReduceRange = !config.FullRangeWeights };
    }

    /// <summary>
    /// Folds BatchNorm into convs and attaches a simulator whose ranges are calibrated on train images. With a
    /// sensitivity mode in <paramref name="config"/>, convs are first quantized one at a time and the worst kept float.
    /// With <paramref name="resumedPolicy"/> (a run being resumed) that policy is used and the ranges are placeholders
    /// the checkpoint overwrites. <paramref name="model"/> is not changed; the caller disposes the returned module and simulator.
    /// </summary>
    /// <param name="model">The float model (left unchanged).</param>
    /// <param name="config">Policy, calibration and sensitivity settings.</param>
    /// <param name="dataDir">Prepared dataset for calibration and the sensitivity mode's `val` evaluation.</param>
    /// <param name="seed">Seed of the calibration and evaluation samples.</param>
    /// <param name="resumedPolicy">The saved policy of a run being resumed, or null.</param>
    /// <param name="progress">Progress lines (calibration, sensitivity), or null.</param>
    /// <param name="calibrationBatches">Feeds to calibrate on instead of swapper pairs from <paramref name="dataDir"/> (a user's own model).</param>
    public static PreparedQat Prepare(GraphModule model, QatConfig config, string dataDir, int seed, QuantPolicy? resumedPolicy = null,
        IProgress<string>? progress = null, IEnumerable<Dictionary<string, TorchSharp.torch.Tensor>>? calibrationBatches = null)
    {
        if (calibrationBatches is not null && (config.SensitivityKeep > 0 || config.SensitivityThresholdDb > 0))
            throw new ArgumentException("the sensitivity mode measures swapper PSNR: it is not available for other models");
        var folded = BatchNormFolding.Fold(model);
        try
        {
            var observer = config.Observer == "minmax" ? ObserverKind.MinMax : ObserverKind.MovingAverage;
            if (resumedPolicy is not null)
            {
                var placeholders = resumedPolicy.QuantizedValues(folded.Graph).ToDictionary(v => v, _ => QuantParams.Uint8(0, 1));
                var resumed = new QuantSimulator(folded.Graph, resumedPolicy, placeholders, observer, config.LearnableScales);
                folded.Quantization = resumed;
                return new PreparedQat(folded, resumed, null);
            }
            var policy = Policy(folded.Graph, config);
            var ranges = calibrationBatches is null
                ? Calibrator.Calibrate(folded, policy.QuantizedValues(folded.Graph), dataDir, config.Calibration, ParseMethod(config.CalibrationMethod), seed: seed)
                : Calibrator.Calibrate(folded, policy.QuantizedValues(folded.Graph), calibrationBatches, ParseMethod(config.CalibrationMethod));
            List<QuantSensitivityRow>? rows = null;
            if (config.SensitivityKeep > 0 || config.SensitivityThresholdDb > 0)
            {
                rows = QuantAnalysis.Sensitivity(folded, policy, ranges, dataDir, config.SensitivityFaces, seed, progress);
                policy = policy with { KeepFloat = policy.KeepFloat.Union(QuantAnalysis.KeepWorst(rows, config.SensitivityKeep, config.SensitivityThresholdDb)).ToHashSet() };
            }
            var simulator = new QuantSimulator(folded.Graph, policy, ranges, observer, config.LearnableScales);
            folded.Quantization = simulator;
            return new PreparedQat(folded, simulator, rows);
        }
        catch
        {
            folded.Dispose();
            throw;
        }
    }

    /// <summary>Saves a simulated model as a QAT model folder (checkpoint + `quantization.json`).</summary>
    public static void Save(string dir, GraphModule model, QuantSimulator simulator)
    {
        Checkpoint.Save(dir, model);
        var path = Path.Combine(dir, FileName);
        AtomicFile.WriteAllText(path, simulator.ToJson());
    }

    /// <summary>True when <paramref name="dir"/> holds a QAT model (a checkpoint with `quantization.json`).</summary>
    public static bool IsQuantized(string dir) => File.Exists(Path.Combine(dir, FileName));

    /// <summary>
    /// Loads a QAT model folder: the folded network with its simulator attached (observers off, eval mode). The caller
    /// disposes both.
    /// </summary>
    public static (GraphModule Model, QuantSimulator Simulator) Load(string dir)
    {
        var path = Path.Combine(dir, FileName);
        if (!File.Exists(path)) throw new FileNotFoundException($"{dir}: not a QAT model (no {FileName}); run ffc qat first", path);
        var (policy, parameters) = QuantSimulator.ReadJson(File.ReadAllText(path), path);
        var model = Checkpoint.Load(dir);
        try
        {
            var expected = policy.QuantizedValues(model.Graph);
            var missing = expected.Where(v => !parameters.ContainsKey(v)).ToList();
            if (missing.Count > 0) throw new InvalidDataException($"{path}: no parameters for {string.Join(", ", missing.Take(5))} (file does not match {Checkpoint.GraphFile})");
            var simulator = new QuantSimulator(model.Graph, policy, parameters) { Observing = false };
            model.Quantization = simulator;
            model.eval();
            return (model, simulator);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The INT8 QDQ export of a simulated model: the exporter quantizes exactly what the simulator fake-quantizes.
    /// <paramref name="resolution"/> exports the same weights and ranges at another input size (latency at 256 px);
    /// <paramref name="opset"/> as in <see cref="ExportOptions.Opset"/> (QDQ with per-channel weights needs ≥ 13).
    /// </summary>
    public static ModelProto ExportInt8(GraphModule model, QuantSimulator simulator, string? description = null, IReadOnlyDictionary<string, string>? metadata = null, int? resolution = null, int opset = 17)
    {
        var meta = new Dictionary<string, string>(metadata ?? new Dictionary<string, string>())
        {
            ["quantization"] = description ?? $"quantization-aware training, QDQ, weights int8 symmetric per channel, activations uint8 per tensor ({simulator.Observer} observers{(simulator.LearnableScales ? ", learnable scales" : "")})",
            ["quantization_policy"] = simulator.ToJson(),
        };
        return OnnxExporter.Export(model, new ExportOptions
        {
            Precision = ExportPrecision.Int8, Policy = simulator.Policy, ActivationParams = simulator.ActivationParams(), Metadata = meta, Resolution = resolution, Opset = opset,
        });
    }
}
