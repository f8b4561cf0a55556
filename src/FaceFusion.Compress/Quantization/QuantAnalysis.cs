using FaceFusion.Compress.Assets;
using System.Globalization;
using FaceFusion.Compress.Data;
using FaceFusion.Compress.Models.Architectures;
using FaceFusion.Compress.Models.Graph;
using FaceFusion.Compress.Reporting;
using FaceFusion.Compress.Runtime;
using FaceFusion.Compress.Training;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Quantization;

/// <summary>Signal-to-quantization-noise ratio of one quantized value: 10·log10(Σf² / Σ(f − q)²) over the evaluation faces.</summary>
public sealed record SqnrRow(string Node, string Op, double SqnrDb);

/// <summary>An INT8 model whose quantization noise drowns a value's signal (<see cref="QuantAnalysis.RequireSqnrFloor"/>).</summary>
public sealed class SqnrFloorException(string message) : Exception(message);

/// <summary>What quantizing one conv alone costs: same-identity PSNR vs truth with only that conv in INT8, its drop from float, and PSNR vs the float output.</summary>
public sealed record QuantSensitivityRow(string Node, double PsnrDb, double PsnrDropDb, double PsnrVsFloatDb);

/// <summary>
/// Where quantization loses precision: per-node SQNR, per-conv sensitivity (the sensitivity mode of the
/// mixed-precision policy) and the parity of an ONNX Runtime INT8 model with the TorchSharp simulation.
/// </summary>
public static class QuantAnalysis
{
    public static readonly string[] SqnrColumns = ["node", "op", "sqnr_db"];
    public static readonly string[] SensitivityColumns = ["node", "psnr_db", "psnr_drop_db", "psnr_vs_float_db"];

    /// <summary>Faces of <paramref name="data"/> used for evaluation: a seeded sample of <paramref name="count"/>.</summary>
    private static int[] Faces(FaceSwapData data, int count, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, data.Count).OrderBy(_ => rng.Next()).Take(Math.Min(count, data.Count)).ToArray();
    }

    private static IEnumerable<(SwapBatch Batch, Dictionary<string, Tensor> Feeds)> Batches(FaceSwapData data, int[] faces, int batchSize = 8)
    {
        for (int start = 0; start < faces.Length; start += batchSize)
        {
            var t = faces.Skip(start).Take(batchSize).ToArray();
            var batch = data.Pairs(t, t);
            yield return (batch, new Dictionary<string, Tensor> { [SwapperIO.Target] = batch.Target, [SwapperIO.Source] = batch.Source });
        }
    }

    /// <summary>The default floor of <see cref="RequireSqnrFloor"/> (`--min-sqnr`, `qat.min_sqnr_db`).</summary>
    public const double DefaultMinSqnrDb = 20;

    /// <summary>
    /// SQNR of every value <paramref name="simulator"/> quantizes, and of the graph outputs, on same-identity pairs of
    /// <paramref name="split"/>: the model runs once in float and once simulated. Worst first.
    /// </summary>
    public static List<SqnrRow> Sqnr(GraphModule model, QuantSimulator simulator, string dataDir, string split = Splits.Val, int faces = 32, int seed = 1)
    {
        using var data = new FaceSwapData(dataDir, split, model.Graph.Resolution);
        return Sqnr(model, simulator, Batches(data, Faces(data, faces, seed)).Select(b => { using (b.Batch) return b.Feeds.ToDictionary(kv => kv.Key, kv => kv.Value.alias()); }));
    }

    /// <summary>
    /// SQNR of every quantized value and graph output over <paramref name="feeds"/> (any model: the feeds name its
    /// inputs). Each feed's tensors are disposed here once used. Worst first; NaN where the simulation is not finite.
    /// </summary>
    public static List<SqnrRow> Sqnr(GraphModule model, QuantSimulator simulator, IEnumerable<Dictionary<string, Tensor>> feeds)
    {
        var previous = model.Quantization;
        model.eval();
        var inputs = model.Graph.Inputs.Select(i => i.Name).ToHashSet();
        var taps = simulator.Values.Where(v => !inputs.Contains(v)).ToList();
        var outputs = model.Graph.Outputs.ToDictionary(o => o.Name, o => o.Node);
        var signal = new Dictionary<string, double>();
        var noise = new Dictionary<string, double>();
        try
        {
            using var _ = no_grad();
            foreach (var feed in feeds)
            {
                using var scope = NewDisposeScope();
                try
                {
                    model.Quantization = null;
                    var reference = model.Run(feed, taps);
                    model.Quantization = simulator;
                    var simulated = model.Run(feed, taps);
                    foreach (var v in taps.Concat(outputs.Keys))
                    {
                        signal[v] = signal.GetValueOrDefault(v) + reference[v].square().sum().item<float>();
                        noise[v] = noise.GetValueOrDefault(v) + reference[v].sub(simulated[v]).square().sum().item<float>();
                    }
                }
                finally
                {
                    foreach (var t in feed.Values) t.Dispose();
                }
            }
        }
        finally
        {
            model.Quantization = previous;
        }
        string OpOf(string v) => outputs.TryGetValue(v, out var node) ? $"output ({model.Graph.Node(node).Op})" : model.Graph.Nodes.First(n => n.Name == v).Op;
        return signal.Keys.Select(v => new SqnrRow(v, OpOf(v), SqnrDb(signal[v], noise[v])))
            .OrderBy(r => double.IsNaN(r.SqnrDb) ? double.NegativeInfinity : r.SqnrDb).ToList();
    }

    /// <summary>10·log10(signal/noise); an exact value (no noise) reads 200 dB, a non-finite simulation NaN.</summary>
    public static double SqnrDb(double signal, double noise) =>
        !double.IsFinite(signal) || !double.IsFinite(noise) ? double.NaN
        : noise <= 0 ? 200
        : Math.Min(200, 10 * Math.Log10(Math.Max(signal, 1e-30) / noise));

    /// <summary>
    /// Stops with <see cref="SqnrFloorException"/> when any row is below <paramref name="floorDb"/> or not finite, naming
    /// the worst values: an INT8 model that broken must never be written silently. <paramref name="model"/> names the
    /// model in the message; <paramref name="csv"/>, when given, is where all rows were written.
    /// </summary>
    public static void RequireSqnrFloor(IReadOnlyList<SqnrRow> rows, double floorDb, string model, string? csv = null)
    {
        var below = rows.Where(r => !(r.SqnrDb >= floorDb)).ToList();
        if (below.Count == 0) return;
        var worst = string.Join(", ", below.Take(5).Select(r => string.Create(CultureInfo.InvariantCulture, $"{r.Node} ({r.Op}) {r.SqnrDb:0.0} dB")));
        throw new SqnrFloorException(string.Create(CultureInfo.InvariantCulture,
            $"{model}: INT8 SQNR below the {floorDb:0.#} dB floor at {below.Count} of {rows.Count} values, worst {worst}; no INT8 model written. ")
            + "Keep those convs float (--keep-float, --sensitivity-keep), try another --method, or lower the floor (--min-sqnr)"
            + (csv is null ? "" : $"; every value's SQNR is in {csv}"));
    }

    /// <summary>
    /// Quantizes one conv at a time (its weights, input and output; everything else float) and measures
    /// same-identity `val` PSNR. <paramref name="model"/> is the folded float network; <paramref name="ranges"/> must
    /// cover every value of the full policy.
    /// </summary>
    public static List<QuantSensitivityRow> Sensitivity(GraphModule model, QuantPolicy policy, IReadOnlyDictionary<string, QuantParams> ranges,
        string dataDir, int faces = 32, int seed = 1, IProgress<string>? progress = null)
    {
        var previous = model.Quantization;
        model.eval();
        var convs = policy.QuantizedConvs(model.Graph).Select(n => n.Name).ToList();
        var allConvs = model.Graph.Nodes.Where(n => n.Op == Ops.Conv).Select(n => n.Name).ToList();
        using var data = new FaceSwapData(dataDir, Splits.Val, model.Graph.Resolution);
        var evalFaces = Faces(data, faces, seed);
        try
        {
            model.Quantization = null;
            var (floatPsnr, floatOutputs) = Evaluate(model, data, evalFaces);
            var rows = new List<QuantSensitivityRow>();
            foreach (var conv in convs)
            {
                var single = new QuantPolicy { KeepFloat = allConvs.Where(c => c != conv).ToHashSet() };
                using var simulator = new QuantSimulator(model.Graph, single, ranges) { Observing = false };
                model.Quantization = simulator;
                var (psnr, outputs) = Evaluate(model, data, evalFaces);
                double mse = outputs.Zip(floatOutputs, (a, b) => a.sub(b).square().mean().item<float>()).Average();
                foreach (var o in outputs) o.Dispose();
                rows.Add(new QuantSensitivityRow(conv, psnr, floatPsnr - psnr, 10 * Math.Log10(4.0 / Math.Max(mse, 1e-20))));
                progress?.Report($"{conv}: {floatPsnr - psnr:0.000} dB drop");
            }
            foreach (var o in floatOutputs) o.Dispose();
            return rows.OrderByDescending(r => r.PsnrDropDb).ToList();
        }
        finally
        {
            model.Quantization = previous;
        }
    }

    /// <summary>
    /// Same-identity PSNR of one set of weights in float (simulator detached) and in simulated INT8 (its simulator):
    /// the fair "same model in FP32" comparison after QAT, which also keeps training and so moves the float model too.
    /// </summary>
    public static (double FloatPsnr, double Int8Psnr) FloatVsInt8(GraphModule model, string dataDir, string split = Splits.Val, int faces = 64, int seed = 1)
    {
        var simulator = model.Quantization ?? throw new InvalidOperationException($"{model.Graph.Name}: no quantization simulator attached");
        model.eval();
        using var data = new FaceSwapData(dataDir, split, model.Graph.Resolution);
        var evalFaces = Faces(data, faces, seed);
        try
        {
            model.Quantization = null;
            var (floatPsnr, floatOutputs) = Evaluate(model, data, evalFaces);
            foreach (var o in floatOutputs) o.Dispose();
            model.Quantization = simulator;
            var (int8Psnr, int8Outputs) = Evaluate(model, data, evalFaces);
            foreach (var o in int8Outputs) o.Dispose();
            return (floatPsnr, int8Psnr);
        }
        finally
        {
            model.Quantization = simulator;
        }
    }

    /// <summary>The convs the sensitivity mode keeps float: the <paramref name="keep"/> worst, plus any whose drop exceeds <paramref name="thresholdDb"/> (when > 0).</summary>
    public static HashSet<string> KeepWorst(IReadOnlyList<QuantSensitivityRow> rows, int keep, double thresholdDb) =>
        rows.OrderByDescending(r => r.PsnrDropDb).Take(Math.Max(0, keep))
            .Concat(thresholdDb > 0 ? rows.Where(r => r.PsnrDropDb > thresholdDb) : [])
            .Select(r => r.Node).ToHashSet();

    private static (double Psnr, List<Tensor> Outputs) Evaluate(GraphModule model, FaceSwapData data, int[] faces)
    {
        double sum = 0;
        var outputs = new List<Tensor>();
        using var _ = no_grad();
        foreach (var (batch, feeds) in Batches(data, faces))
            using (batch)
            {
                using var scope = NewDisposeScope();
                var output = model.call(feeds)[SwapperIO.Output];
                sum += ImageMetrics.Psnr(output, batch.Target).sum().item<float>();
                outputs.Add(output.MoveToOuterDisposeScope());
            }
        return (sum / faces.Length, outputs);
    }

    /// <summary>
    /// PSNR (dB, data range 2) of an ONNX Runtime INT8 model's output against the TorchSharp simulation
    /// (<paramref name="model"/> with its simulator attached) on same-identity pairs of <paramref name="split"/>.
    /// </summary>
    public static double Parity(GraphModule model, byte[] onnx, string dataDir, string split = Splits.Val, int faces = 16, int seed = 1)
    {
        model.eval();
        using var swapper = new OrtSwapper(onnx, "int8");
        using var data = new FaceSwapData(dataDir, split, model.Graph.Resolution);
        double squared = 0;
        long count = 0;
        using var _ = no_grad();
        foreach (var (batch, feeds) in Batches(data, Faces(data, faces, seed)))
            using (batch)
            {
                using var scope = NewDisposeScope();
                var simulated = model.call(feeds)[SwapperIO.Output].contiguous();
                int n = (int)batch.Target.shape[0];
                var (output, _) = swapper.Run(batch.Target.contiguous().data<float>().ToArray(), batch.Source.contiguous().data<float>().ToArray(), n);
                var ort = tensor(output).reshape(simulated.shape);
                squared += ort.sub(simulated).square().sum().item<float>();
                count += simulated.numel();
            }
        return 10 * Math.Log10(4.0 / Math.Max(squared / Math.Max(1, count), 1e-20));
    }

    /// <summary>Writes `quant_sqnr.csv` (columns node,op,sqnr_db) to <paramref name="dir"/>; returns its path.</summary>
    public static string WriteSqnr(string dir, IReadOnlyList<SqnrRow> rows)
    {
        var path = Path.Combine(dir, "quant_sqnr.csv");
        WriteCsv(path, SqnrColumns, rows.Select(r => new[] { r.Node, r.Op, r.SqnrDb.ToString("0.00", CultureInfo.InvariantCulture) }));
        return path;
    }

    /// <summary>Writes `quant_sensitivity.csv` (columns node,psnr_db,psnr_drop_db,psnr_vs_float_db); returns its path.</summary>
    public static string WriteSensitivity(string dir, IReadOnlyList<QuantSensitivityRow> rows)
    {
        var path = Path.Combine(dir, "quant_sensitivity.csv");
        WriteCsv(path, SensitivityColumns, rows.Select(r => new[]
        {
            r.Node, r.PsnrDb.ToString("0.000", CultureInfo.InvariantCulture), r.PsnrDropDb.ToString("0.000", CultureInfo.InvariantCulture),
            r.PsnrVsFloatDb.ToString("0.00", CultureInfo.InvariantCulture),
        }));
        return path;
    }

    private static void WriteCsv(string path, string[] columns, IEnumerable<string[]> rows)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        AtomicFile.WriteAllLines(path, rows.Select(r => string.Join(',', r)).Prepend(string.Join(',', columns)));
    }
}
