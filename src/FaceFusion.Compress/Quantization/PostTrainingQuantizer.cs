using FaceFusion.Compress.Export;
using FaceFusion.Compress.Models.Graph;
using FaceFusion.Compress.Runtime;
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
    public static ModelProto Quantize(GraphModule model, string dataDir, int calibrationImages, CalibrationMethod method,
        QuantPolicy? policy = null, IReadOnlyDictionary<string, string>? metadata = null)
    {
        policy ??= new QuantPolicy();
        var values = policy.QuantizedValues(model.Graph);
        var ranges = Calibrator.Calibrate(model, values, dataDir, calibrationImages, method);
        var meta = new Dictionary<string, string>(metadata ?? new Dictionary<string, string>())
        {
            ["quantization"] = $"static QDQ, weights int8 symmetric per channel, activations uint8 per tensor, {method} calibration on {calibrationImages} train images",
            ["quantization_float_nodes"] = string.Join(",", model.Graph.Nodes.Where(n => n.Op is Ops.AttentionFusion or Ops.IdentityInjection or Ops.InstanceNorm or Ops.Add or Ops.Concat || policy.KeepFloat.Contains(n.Name)).Select(n => n.Name)),
        };
        return OnnxExporter.Export(model, new ExportOptions { Precision = ExportPrecision.Int8, Policy = policy, ActivationParams = ranges, Metadata = meta });
    }

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
