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

/// <summary>The INT8 version of a user's ONNX CNN and how close it stays to the FP32 original.</summary>
/// <param name="Sqnr">Every quantized value's SQNR on held-out faces, worst first (<see cref="QuantAnalysis.Sqnr(Models.Graph.GraphModule, QuantSimulator, IEnumerable{Dictionary{string, Tensor}})"/>).</param>
public sealed record ImportedQuantization(ModelProto Model, string Input, int Size, double ParityDb, double OutputCosine, IReadOnlyList<SqnrRow> Sqnr);

/// <summary>
/// Post-training INT8 of a user's own FP32 ONNX CNN (the ops <see cref="OnnxImporter"/> reads), as ONNX Runtime's
/// static quantizer does: import, fold BatchNorm, calibrate on images (the dataset's aligned faces resized to the
/// model's square input, normalised (x − mean)/std on the 0–255 scale), export QDQ with the same mixed-precision
/// policy, then compare ONNX Runtime INT8 with the original FP32 model.
/// </summary>
public static class ImportedModelQuantizer
{
    public static ImportedQuantization Quantize(string onnxPath, string dataDir, QatConfig config, float mean, float std, int seed = 1)
    {
        var imported = OnnxImporter.Import(onnxPath, Path.GetFileNameWithoutExtension(onnxPath));
        var images = imported.Graph.Inputs.Where(i => i.IsImage).ToList();
        if (imported.Graph.Inputs.Count != 1 || images.Count != 1 || images[0].Channels != 3)
            throw new InvalidDataException($"{onnxPath}: PTQ of an ONNX model needs exactly one RGB image input [N,3,H,W]; it has {string.Join(", ", imported.Graph.Inputs.Select(i => i.Name))}");
        int size = InputSize(onnxPath);
        var graph = imported.Graph with { Resolution = size };
        using var model = new ImportedNetwork(graph, imported.Weights, imported.TensorToNode).BuildModule();
        foreach (var w in imported.Weights.Values) w.Dispose();
        model.eval();
        var input = images[0].Name;
        IEnumerable<Dictionary<string, Tensor>> Batches(int count, string split)
        {
            using var data = new FaceSwapData(dataDir, split, size);
            var rng = new Random(seed);
            var faces = Enumerable.Range(0, data.Count).OrderBy(_ => rng.Next()).Take(Math.Min(count, data.Count)).ToArray();
            for (int start = 0; start < faces.Length; start += 8)
            {
                using var batch = data.Pairs(faces.Skip(start).Take(8).ToArray(), faces.Skip(start).Take(8).ToArray());
                yield return new Dictionary<string, Tensor> { [input] = batch.Target.add(1).mul(127.5).sub(mean).div(std) };
            }
        }
        var prepared = QuantizationAware.Prepare(model, config, dataDir, seed, calibrationBatches: Batches(config.Calibration, Splits.Train));
        using var folded = prepared.Model;
        using var simulator = prepared.Simulator;
        var sqnr = QuantAnalysis.Sqnr(folded, simulator, Batches(32, Splits.Val));
        var proto = QuantizationAware.ExportInt8(folded, simulator,
            $"post-training static QDQ of {Path.GetFileName(onnxPath)}, weights int8 per channel, activations uint8 per tensor, {config.CalibrationMethod} calibration on {config.Calibration} images",
            new Dictionary<string, string> { ["source_model"] = Path.GetFileName(onnxPath) });

        // ONNX Runtime INT8 against the original FP32 model on held-out faces: PSNR over the output range and mean cosine.
        OrtSessions.EnsureEnvironment();
        using var options = OrtSessions.CreateOptions();
        using var original = new InferenceSession(onnxPath, options);
        using var quantized = new InferenceSession(proto.ToByteArray(), options);
        var originalInput = original.InputMetadata.Keys.Single();
        var quantizedInput = quantized.InputMetadata.Keys.Single();
        double squared = 0, range = 0, cosine = 0;
        long count = 0, rows = 0;
        foreach (var feeds in Batches(32, Splits.Val))
        {
            var x = feeds[input];
            var all = x.contiguous().data<float>().ToArray();
            var dims = x.shape.Select(d => (int)d).ToArray();
            x.Dispose();
            int n = dims[0], plane = all.Length / n;
            dims[0] = 1; // one image at a time: the original may have a fixed batch of 1
            for (int k = 0; k < n; k++)
            {
                var values = all.AsSpan(k * plane, plane).ToArray();
                using var a = original.Run([NamedOnnxValue.CreateFromTensor(originalInput, new DenseTensor(values, dims))]);
                using var b = quantized.Run([NamedOnnxValue.CreateFromTensor(quantizedInput, new DenseTensor(values, dims))]);
                var fa = a.First().AsTensor<float>().ToArray();
                var fb = b.First().AsTensor<float>().ToArray();
                range = Math.Max(range, fa.Max() - fa.Min());
                for (int i = 0; i < fa.Length; i++) squared += (fa[i] - fb[i]) * (double)(fa[i] - fb[i]);
                count += fa.Length;
                cosine += IdentityEmbedder.Cosine(fa, fb);
                rows++;
            }
        }
        double parity = 10 * Math.Log10(range * range / Math.Max(squared / Math.Max(1, count), 1e-20));
        return new ImportedQuantization(proto, input, size, parity, cosine / Math.Max(1, rows), sqnr);
    }

    /// <summary>The square spatial size of the model's image input (static in the file).</summary>
    private static int InputSize(string onnxPath)
    {
        var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(onnxPath));
        var initializers = model.Graph.Initializer.Select(t => t.Name).ToHashSet();
        var dims = model.Graph.Input.First(i => !initializers.Contains(i.Name)).Type.TensorType.Shape.Dim.Select(d => d.DimValue).ToArray();
        if (dims.Length != 4 || dims[2] <= 0 || dims[2] != dims[3])
            throw new InvalidDataException($"{onnxPath}: the image input must have a static square size [N,3,S,S]; it is [{string.Join(",", dims)}]");
        return (int)dims[2];
    }
}
