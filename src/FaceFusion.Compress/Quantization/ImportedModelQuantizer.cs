using FaceFusion.Compress.Data;
using FaceFusion.Compress.Export;
using FaceFusion.Compress.Models.Import;
using FaceFusion.Compress.Runtime;
using FaceFusion.Compress.Training;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using DenseTensor = Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<float>;
using Onnx;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Quantization;

/// <summary>The INT8 version of a user's ONNX model and how close it stays to the FP32 original.</summary>
/// <param name="Preset">The IO convention calibration and evaluation followed.</param>
/// <param name="Size">The square size of the image input.</param>
/// <param name="ParityDb">PSNR of ONNX Runtime INT8 against the FP32 original on <see cref="ModelIoPreset.Output"/> over held-out (val) faces.</param>
/// <param name="Sqnr">Every quantized value's SQNR on held-out faces, worst first (<see cref="QuantAnalysis.Sqnr(Models.Graph.GraphModule, QuantSimulator, IEnumerable{Dictionary{string, Tensor}})"/>).</param>
public sealed record ImportedQuantization(ModelProto Model, ModelIoPreset Preset, int Size, double ParityDb, double OutputCosine, IReadOnlyList<SqnrRow> Sqnr);

/// <summary>
/// Post-training INT8 of an FP32 ONNX model (the ops and exporter patterns <see cref="OnnxImporter"/> reads: a
/// user's CNN or the toolkit's own exports, swappers with two inputs included), as ONNX Runtime's static quantizer
/// does: import, fold BatchNorm, calibrate on inputs made from the dataset by the model's IO convention
/// (<see cref="ModelIoPreset"/>), export QDQ with the same mixed-precision policy, then compare ONNX Runtime INT8
/// with the original FP32 model.
/// </summary>
public static class ImportedModelQuantizer
{
    /// <param name="ioPreset">swapper, arcface or image; null: from the file's metadata or its inputs.</param>
    /// <param name="mean">Input normalisation of the single-image presets (127.5 when null).</param>
    public static ImportedQuantization Quantize(string onnxPath, string dataDir, QatConfig config, string? ioPreset = null, float? mean = null, float? std = null, int seed = 1)
    {
        var imported = OnnxImporter.Import(onnxPath, Path.GetFileNameWithoutExtension(onnxPath));
        int size = InputSize(onnxPath, imported.Graph);
        var graph = imported.Graph with { Resolution = size };
        var preset = ModelIoPreset.Resolve(onnxPath, graph, ioPreset, mean, std);
        using var model = new ImportedNetwork(graph, imported.Weights, imported.TensorToNode).BuildModule();
        foreach (var w in imported.Weights.Values) w.Dispose();
        model.eval();
        var prepared = QuantizationAware.Prepare(model, config, dataDir, seed, calibrationBatches: preset.Batches(dataDir, Splits.Train, config.Calibration, seed));
        using var folded = prepared.Model;
        using var simulator = prepared.Simulator;
        var sqnr = QuantAnalysis.Sqnr(folded, simulator, preset.Batches(dataDir, Splits.Val, 32, seed));
        var proto = QuantizationAware.ExportInt8(folded, simulator,
            $"post-training static QDQ of {Path.GetFileName(onnxPath)}, weights int8 per channel, activations uint8 per tensor, {config.CalibrationMethod} calibration on {config.Calibration} {preset.Name} inputs",
            new Dictionary<string, string> { ["source_model"] = Path.GetFileName(onnxPath), [ModelIoPreset.MetadataKey] = preset.Name });

        // Graph input → the original file's input name (the importer sanitises names).
        var onnxNames = graph.Inputs.ToDictionary(i => i.Name, i => imported.TensorToNode.First(kv => kv.Value == i.Name).Key);
        var (parity, cosine) = Compare(onnxPath, proto, preset, preset.Batches(dataDir, Splits.Val, 32, seed), onnxNames);
        return new ImportedQuantization(proto, preset, size, parity, cosine, sqnr);
    }

    /// <summary>
    /// ONNX Runtime INT8 against the original FP32 file, one sample at a time (the original may have a fixed batch of
    /// 1): PSNR on the preset's output (over its range, or the range the original gives) and mean cosine. Feeds are disposed.
    /// </summary>
    public static (double PsnrDb, double Cosine) Compare(string onnxPath, ModelProto quantizedModel, ModelIoPreset preset,
        IEnumerable<Dictionary<string, Tensor>> feeds, IReadOnlyDictionary<string, string> onnxNames)
    {
        OrtSessions.EnsureEnvironment();
        using var options = OrtSessions.CreateOptions();
        using var original = new InferenceSession(onnxPath, options);
        using var quantized = new InferenceSession(quantizedModel.ToByteArray(), options);
        double squared = 0, range = 0, cosine = 0;
        long count = 0, rows = 0;
        foreach (var feed in feeds)
        {
            var samples = feed.ToDictionary(kv => kv.Key, kv => (Values: kv.Value.contiguous().data<float>().ToArray(), Dims: kv.Value.shape.Select(d => (int)d).ToArray()));
            foreach (var t in feed.Values) t.Dispose();
            int n = samples.Values.First().Dims[0];
            for (int k = 0; k < n; k++)
            {
                List<NamedOnnxValue> Inputs(Func<string, string> name) => samples.Select(kv =>
                {
                    int plane = kv.Value.Values.Length / n;
                    var dims = kv.Value.Dims.ToArray();
                    dims[0] = 1;
                    return NamedOnnxValue.CreateFromTensor(name(kv.Key), new DenseTensor(kv.Value.Values.AsSpan(k * plane, plane).ToArray(), dims));
                }).ToList();
                using var a = original.Run(Inputs(g => onnxNames[g]));
                using var b = quantized.Run(Inputs(g => g));
                var fa = a.First(r => ImportContext.Sanitize(r.Name) == preset.Output).AsTensor<float>().ToArray();
                var fb = b.First(r => r.Name == preset.Output).AsTensor<float>().ToArray();
                range = Math.Max(range, fa.Max() - fa.Min());
                for (int i = 0; i < fa.Length; i++) squared += (fa[i] - fb[i]) * (double)(fa[i] - fb[i]);
                count += fa.Length;
                cosine += IdentityEmbedder.Cosine(fa, fb);
                rows++;
            }
        }
        double peak = preset.OutputRange ?? range;
        double parity = 10 * Math.Log10(peak * peak / Math.Max(squared / Math.Max(1, count), 1e-20));
        return (parity, cosine / Math.Max(1, rows));
    }

    /// <summary>The square spatial size of the model's image input (static in the file).</summary>
    private static int InputSize(string onnxPath, Models.Graph.NetworkGraph graph)
    {
        var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(onnxPath));
        var initializers = model.Graph.Initializer.Select(t => t.Name).ToHashSet();
        var image = model.Graph.Input.Where(i => !initializers.Contains(i.Name)).FirstOrDefault(i => i.Type.TensorType.Shape.Dim.Count == 4)
            ?? throw new InvalidDataException($"{onnxPath}: PTQ of an ONNX model needs an image input [N,C,S,S]; the inputs are {string.Join(", ", graph.Inputs.Select(i => i.Name))}");
        var dims = image.Type.TensorType.Shape.Dim.Select(d => d.DimValue).ToArray();
        if (dims[2] <= 0 || dims[2] != dims[3])
            throw new InvalidDataException($"{onnxPath}: the image input '{image.Name}' must have a static square size [N,3,S,S]; it is [{string.Join(",", dims)}]");
        return (int)dims[2];
    }
}
