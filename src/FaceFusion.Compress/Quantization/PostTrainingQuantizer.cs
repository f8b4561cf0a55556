using FaceFusion.Compress.Export;
using FaceFusion.Compress.Models.Graph;
using FaceFusion.Compress.Runtime;
using FaceFusion.Compress.Training;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Onnx;

namespace FaceFusion.Compress.Quantization;

/// <summary>What ONNX Runtime made of a model: its optimised graph's op counts.</summary>
public sealed record KernelReport(IReadOnlyDictionary<string, int> OpCounts)
{
    /// <summary>Integer kernels: fused quantized ops that compute in INT8/UINT8.</summary>
    public int IntegerOps => OpCounts.Where(kv => kv.Key.StartsWith("QLinear") || kv.Key is "ConvInteger" or "MatMulInteger" or "DynamicQuantizeLinear" or "QGemm").Sum(kv => kv.Value);
    public int FloatConvs => OpCounts.GetValueOrDefault("Conv") + OpCounts.GetValueOrDefault("FusedConv");
}

/// <summary>
/// Post-training static quantization: calibrates activation ranges on train images, then exports a QDQ ONNX
/// model (INT8 weights per channel, UINT8 activations per tensor) under a mixed-precision policy.
/// </summary>
public static class PostTrainingQuantizer
{
    /// <summary>Calibrates and exports in one go; see <see cref="Prepare"/>.</summary>
    public static ModelProto Quantize(GraphModule model, string dataDir, int calibrationImages, CalibrationMethod method,
        QuantPolicy? policy = null, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var prepared = Prepare(model, Config(calibrationImages, method, policy), dataDir, 1);
        using var folded = prepared.Model;
        using var simulator = prepared.Simulator;
        return Export(prepared, calibrationImages, method, metadata);
    }

    /// <summary>The QAT-style configuration that describes a PTQ run (no training).</summary>
    public static QatConfig Config(int calibrationImages, CalibrationMethod method, QuantPolicy? policy = null, int sensitivityKeep = 0, double sensitivityThresholdDb = 0) => new()
    {
        Calibration = calibrationImages,
        CalibrationMethod = method.ToString().ToLowerInvariant(),
        Int8Skips = policy?.QuantizeSkips ?? false,
        KeepFloat = policy?.KeepFloat.ToList() ?? [],
        IslandWeights = (policy?.IslandWeights ?? FloatIslandWeights.Int8).ToString().ToLowerInvariant(),
        FullRangeWeights = !(policy?.ReduceRange ?? true),
        SensitivityKeep = sensitivityKeep,
        SensitivityThresholdDb = sensitivityThresholdDb,
    };

    /// <summary>
    /// BatchNorm folding, calibration on train images and (optionally) the sensitivity mode: the folded model with
    /// its simulator attached, ready for <see cref="Export"/>, <see cref="QuantAnalysis.Parity"/> and
    /// <see cref="QuantAnalysis.Sqnr"/>. The caller disposes the model and the simulator.
    /// </summary>
    public static PreparedQat Prepare(GraphModule model, QatConfig config, string dataDir, int seed, IProgress<string>? progress = null) =>
        QuantizationAware.Prepare(model, config, dataDir, seed, progress: progress);

    /// <summary>The INT8 QDQ ONNX model of a prepared (calibrated) model.</summary>
    public static ModelProto Export(PreparedQat prepared, int calibrationImages, CalibrationMethod method, IReadOnlyDictionary<string, string>? metadata = null) =>
        QuantizationAware.ExportInt8(prepared.Model, prepared.Simulator,
            $"post-training static QDQ, weights int8 symmetric per channel, activations uint8 per tensor, {method} calibration on {calibrationImages} train images",
            metadata);

    /// <summary>Lets ONNX Runtime optimise the model (all levels) and counts the ops of the result.</summary>
    public static KernelReport InspectKernels(byte[] model, OrtSettings? settings = null)
    {
        var path = Path.Combine(Path.GetTempPath(), $"ffc-optimised-{Environment.ProcessId}-{Guid.NewGuid():N}.onnx");
        try
        {
            OrtSessions.EnsureEnvironment();
            using (var options = OrtSessions.CreateOptions((settings ?? new OrtSettings()) with { OptimizedModelPath = path }))
            using (new InferenceSession(model, options)) { }
            var optimised = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
            return new KernelReport(optimised.Graph.Node.GroupBy(n => n.OpType).ToDictionary(g => g.Key, g => g.Count()));
        }
        finally
        {
            if (File.Exists(path)) File.Delete(path);
        }
    }
}
