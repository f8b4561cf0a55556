using System.Diagnostics;
using FaceFusion.Compress.Data;
using FaceFusion.Compress.Runtime;

namespace FaceFusion.Compress.Reporting;

/// <summary>Batch-1 latency of one model in an interleaved comparison.</summary>
public sealed record InterleavedTime(string ModelPath, double P50Ms, double P90Ms);

/// <summary>
/// Batch-1 latency of several swappers measured in interleaved rounds (one run of each model per round), so
/// background load hits them alike: the fair way to compare FP32 with INT8, or an original with a pruned model.
/// </summary>
public static class InterleavedLatency
{
    /// <summary>
    /// Loads every model (same resolution required), warms each up, then times <paramref name="rounds"/> rounds.
    /// ONNX Runtime's thread spinning is turned off so one session's idle threads do not steal the running one's cores.
    /// </summary>
    public static List<InterleavedTime> Measure(IReadOnlyList<string> modelPaths, int rounds = 60, int threads = 0)
    {
        if (modelPaths.Count == 0) throw new ArgumentException("no models to time");
        var ort = new OrtSettings { IntraOpThreads = threads, AllowSpinning = false };
        var swappers = new List<OrtSwapper>();
        try
        {
            foreach (var m in modelPaths) swappers.Add(new OrtSwapper(m, ort));
            int r = swappers[0].Resolution;
            var odd = swappers.FirstOrDefault(s => s.Resolution != r);
            if (odd is not null) throw new InvalidDataException($"{odd.Path}: runs at {odd.Resolution} px, {swappers[0].Path} at {r} px; all models must take the same resolution");
            var rng = new Random(1);
            var target = Enumerable.Range(0, 3 * r * r).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
            var source = IdentityEmbedder.Normalize(Enumerable.Range(0, 512).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray());
            foreach (var s in swappers) for (int i = 0; i < 5; i++) s.Run(target, source, 1);
            var times = swappers.Select(_ => new List<double>()).ToList();
            for (int round = 0; round < rounds; round++)
                for (int k = 0; k < swappers.Count; k++)
                {
                    var w = Stopwatch.StartNew();
                    swappers[k].Run(target, source, 1);
                    times[k].Add(w.Elapsed.TotalMilliseconds);
                }
            return modelPaths.Select((m, k) => new InterleavedTime(m, SwapBench.Percentile(times[k], 50), SwapBench.Percentile(times[k], 90))).ToList();
        }
        finally
        {
            foreach (var s in swappers) s.Dispose();
        }
    }
}
