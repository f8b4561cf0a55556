using System.Diagnostics;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace FaceFusion.Compress.Runtime;

/// <summary>Time ONNX Runtime spent in one op type per run, from its profiler.</summary>
public sealed record OpTime(string OpType, int Nodes, double MsPerRun, double Share);

/// <summary>
/// Where a model's latency goes: runs a swapper with ONNX Runtime's profiler on and sums kernel time per op type of
/// the optimised graph (QLinearConv, DequantizeLinear, Softmax, …), so INT8 float islands and Q/DQ traffic show up.
/// </summary>
public static class OpProfiler
{
    public static List<OpTime> Profile(string modelPath, int runs = 30, OrtSettings? settings = null)
    {
        var prefix = Path.Combine(Path.GetTempPath(), $"ffc-profile-{Environment.ProcessId}-{Guid.NewGuid():N}");
        string? file = null;
        try
        {
            using var options = OrtSessions.CreateOptions(settings);
            options.EnableProfiling = true;
            options.ProfileOutputPathPrefix = prefix;
            InferenceSession session;
            try { session = new InferenceSession(modelPath, options); }
            catch (OnnxRuntimeException e) { throw new InvalidDataException($"{modelPath}: ONNX Runtime cannot load this model ({e.Message.Trim()})", e); }
            using (session)
            {
                var feeds = session.InputMetadata.Select(kv =>
                {
                    var dims = kv.Value.Dimensions.Select(d => d > 0 ? d : 1).ToArray();
                    var values = new float[dims.Aggregate(1, (a, b) => a * b)];
                    var rng = new Random(1);
                    for (int i = 0; i < values.Length; i++) values[i] = (float)(rng.NextDouble() * 2 - 1);
                    return NamedOnnxValue.CreateFromTensor(kv.Key, new DenseTensor<float>(values, dims));
                }).ToList();
                for (int i = 0; i < 3; i++) session.Run(feeds).Dispose();
                for (int i = 0; i < runs; i++) session.Run(feeds).Dispose();
                file = session.EndProfiling();
            }
            using var doc = JsonDocument.Parse(File.ReadAllText(file));
            var perOp = new Dictionary<string, (double Us, HashSet<string> Nodes)>();
            foreach (var e in doc.RootElement.EnumerateArray())
            {
                if (e.GetProperty("cat").GetString() != "Node") continue;
                var name = e.GetProperty("name").GetString() ?? "";
                if (!name.EndsWith("_kernel_time", StringComparison.Ordinal)) continue;
                var op = e.TryGetProperty("args", out var args) && args.TryGetProperty("op_name", out var o) ? o.GetString() ?? "?" : "?";
                var entry = perOp.GetValueOrDefault(op, (0, new HashSet<string>()));
                entry.Us += e.GetProperty("dur").GetDouble();
                entry.Nodes.Add(name);
                perOp[op] = entry;
            }
            // The warm-up runs are in the trace too: scale by the number of runs profiled.
            double total = perOp.Values.Sum(v => v.Us);
            return perOp.Select(kv => new OpTime(kv.Key, kv.Value.Nodes.Count, kv.Value.Us / 1000.0 / (runs + 3), kv.Value.Us / Math.Max(1, total)))
                .OrderByDescending(t => t.MsPerRun).ToList();
        }
        finally
        {
            if (file is not null && File.Exists(file)) File.Delete(file);
        }
    }
}
