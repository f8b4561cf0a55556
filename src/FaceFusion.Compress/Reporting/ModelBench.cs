using System.Diagnostics;
using System.Globalization;
using FaceFusion.Compress.Export;
using FaceFusion.Compress.Runtime;
using Onnx;

namespace FaceFusion.Compress.Reporting;

/// <summary>
/// `ffc bench` of an ONNX model that is not a swapper (a recogniser, a detector, …): what can be measured without
/// knowing what its outputs mean. Load time, batch-1 latency percentiles and fps on made-up or given inputs
/// (<see cref="OrtTimedModel"/>), batch-8 throughput when the batch is dynamic, parameters, precision from the graph,
/// peak RSS and the CPU. Quality columns are left empty (NaN); the judge does not apply.
/// </summary>
public static class ModelBench
{
    /// <summary>True when the file has a swapper's `target` and `source` inputs and `output` output.</summary>
    public static bool IsSwapper(string path)
    {
        using var session = OrtSessions.Open(path);
        return session.InputMetadata.ContainsKey(OrtSwapper.Target) && session.InputMetadata.ContainsKey(OrtSwapper.Source)
            && session.OutputMetadata.ContainsKey(OrtSwapper.Output);
    }

    public static BenchResult Run(BenchOptions o, IReadOnlyDictionary<string, int[]>? shapes = null, IReadOnlyDictionary<string, string>? files = null,
        IProgress<string>? status = null)
    {
        var file = new FileInfo(o.ModelPath);
        if (!file.Exists) throw new FileNotFoundException($"{o.ModelPath}: model file not found", o.ModelPath);
        var proto = OnnxPrecision.Read(o.ModelPath);
        var precision = OnnxPrecision.Detect(proto);
        double loadMs = o.FreshProcessLoadMs ?? SwapBench.MeasureLoadMs(o.ModelPath, o.Ort);
        // Weights: float and 8-bit initializers with more than one element (not scales, zero points or shapes).
        long parameters = proto.Graph.Initializer.Where(t => t.Dims.Aggregate(1L, (a, d) => a * d) > 1 && t.DataType is (int)TensorProto.Types.DataType.Float or (int)TensorProto.Types.DataType.Float16
                or (int)TensorProto.Types.DataType.Int8 or (int)TensorProto.Types.DataType.Uint8)
            .Sum(t => t.Dims.Aggregate(1L, (a, d) => a * d));

        status?.Report("batch-1 latency");
        var latencies = new List<double>();
        int resolution;
        IReadOnlyList<(string Name, int[] Dims)> inputShapes;
        using (var model = new OrtTimedModel(o.ModelPath, o.Ort, shapes, files, o.Seed))
        {
            inputShapes = model.InputShapes;
            resolution = model.InputShapes.Select(i => i.Dims).FirstOrDefault(d => d.Length == 4)?[^1] ?? 0;
            for (int i = 0; i < 5; i++) model.Run();
            for (int i = 0; i < o.Runs; i++)
            {
                var w = Stopwatch.StartNew();
                model.Run();
                latencies.Add(w.Elapsed.TotalMilliseconds);
            }
        }
        double batch8Fps = double.NaN;
        // Given input files hold one batch's values: batch-8 throughput then needs made-up inputs, so it is left out.
        if (BatchIsDynamic(proto) && (files is null || files.Count == 0))
        {
            status?.Report("batch-8 throughput");
            var batch8 = inputShapes.ToDictionary(i => i.Name, i => i.Dims.Select((d, k) => k == 0 ? 8 : d).ToArray());
            {
                using var eight = new OrtTimedModel(o.ModelPath, o.Ort, batch8, null, o.Seed);
                eight.Run();
                var w = Stopwatch.StartNew();
                for (int i = 0; i < 5; i++) eight.Run();
                batch8Fps = 8 * 5 / w.Elapsed.TotalSeconds;
            }
        }
        double p50 = SwapBench.Percentile(latencies, 50);
        using var process = Process.GetCurrentProcess();
        var row = new BenchRow
        {
            Model = Path.GetFileNameWithoutExtension(o.ModelPath), Precision = precision.Precision, Resolution = resolution, Params = parameters,
            FileBytes = file.Length, LoadMs = loadMs, P50Ms = p50, P90Ms = SwapBench.Percentile(latencies, 90), P95Ms = SwapBench.Percentile(latencies, 95),
            P99Ms = SwapBench.Percentile(latencies, 99), Fps = 1000.0 / p50, Batch8Fps = batch8Fps,
            PsnrDb = double.NaN, Ssim = double.NaN, IdCosine = double.NaN, PerceptualDistance = double.NaN,
            Threads = o.Ort.EffectiveThreads, Provider = "CPUExecutionProvider", MachinePeakGmacs = double.NaN, AchievedGmacs = double.NaN,
            Cpu = CpuInfo.Describe, PeakRssMb = process.PeakWorkingSet64 / 1024.0 / 1024.0,
            GraphOptimization = o.Ort.OptimizationLevel.ToString(), LoadInFreshProcess = o.FreshProcessLoadMs is not null,
            Split = "", TimestampUtc = DateTime.UtcNow.ToString("o", CultureInfo.InvariantCulture),
        };
        return new BenchResult(row, [], latencies) { Precision = precision };
    }

    private static bool BatchIsDynamic(ModelProto proto)
    {
        var initializers = proto.Graph.Initializer.Select(t => t.Name).ToHashSet();
        var inputs = proto.Graph.Input.Where(i => !initializers.Contains(i.Name)).ToList();
        return inputs.Count > 0 && inputs.All(i => i.Type?.TensorType?.Shape?.Dim is { Count: > 0 } d && d[0].DimValue <= 0);
    }
}
