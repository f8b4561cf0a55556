using System.Diagnostics;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace FaceFusion.Compress.Runtime;

/// <summary>Time ONNX Runtime spent in one op type per run, from its profiler.</summary>
public sealed record OpTime(string OpType, int Nodes, double MsPerRun, double Share);

/// <summary>Time ONNX Runtime spent in one node of its optimised graph per run (names are ORT's, after fusion).</summary>
public sealed record NodeTime(string Node, string OpType, double MsPerRun, double Share);

/// <summary>
/// Where a model's latency goes: runs a swapper with ONNX Runtime's profiler on and sums kernel time per op type of
/// the optimised graph (QLinearConv, DequantizeLinear, Softmax, …), so INT8 float islands and Q/DQ traffic show up.
/// </summary>
public static class OpProfiler
{
    /// <summary>Kernel time per op type, most expensive first.</summary>
    public static List<OpTime> Profile(string modelPath, int runs = 30, OrtSettings? settings = null) =>
        ProfileNodes(modelPath, runs, settings).GroupBy(n => n.OpType)
            .Select(g => new OpTime(g.Key, g.Count(), g.Sum(n => n.MsPerRun), g.Sum(n => n.Share)))
            .OrderByDescending(t => t.MsPerRun).ToList();

    /// <summary>Kernel time per node of the optimised graph, most expensive first.</summary>
    public static List<NodeTime> ProfileNodes(string modelPath, int runs = 30, OrtSettings? settings = null)
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
            var perNode = new Dictionary<string, (string Op, double Us)>();
            foreach (var e in doc.RootElement.EnumerateArray())
            {
                if (e.GetProperty("cat").GetString() != "Node") continue;
                var name = e.GetProperty("name").GetString() ?? "";
                if (!name.EndsWith("_kernel_time", StringComparison.Ordinal)) continue;
                var op = e.TryGetProperty("args", out var args) && args.TryGetProperty("op_name", out var o) ? o.GetString() ?? "?" : "?";
                var entry = perNode.GetValueOrDefault(name, (op, 0));
                entry.Us += e.GetProperty("dur").GetDouble();
                perNode[name] = entry;
            }
            // The warm-up runs are in the trace too: scale by the number of runs profiled.
            double total = perNode.Values.Sum(v => v.Us);
            return perNode.Select(kv => new NodeTime(kv.Key[..^"_kernel_time".Length], kv.Value.Op, kv.Value.Us / 1000.0 / (runs + 3), kv.Value.Us / Math.Max(1, total)))
                .OrderByDescending(t => t.MsPerRun).ToList();
        }
        finally
        {
            if (file is not null && File.Exists(file)) File.Delete(file);
        }
    }
}
