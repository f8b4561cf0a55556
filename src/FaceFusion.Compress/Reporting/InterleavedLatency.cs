using System.Diagnostics;
using FaceFusion.Compress.Data;
using FaceFusion.Compress.Runtime;

namespace FaceFusion.Compress.Reporting;

/// <summary>Batch-1 latency of one model in an interleaved comparison; <paramref name="RepeatP50Ms"/>: the p50 of each repeat.</summary>
public sealed record InterleavedTime(string ModelPath, double P50Ms, double P90Ms, IReadOnlyList<double> RepeatP50Ms)
{
    /// <summary>
    /// This p50 over <paramref name="other"/>'s, repeat by repeat: the median (which, unlike a ratio of pooled p50s,
    /// always lies within the range) and the range.
    /// </summary>
    public (double Median, double Min, double Max) RatioTo(InterleavedTime other)
    {
        var ratios = RepeatP50Ms.Zip(other.RepeatP50Ms, (a, b) => a / b).ToList();
        return (SwapBench.Percentile(ratios, 50), ratios.Min(), ratios.Max());
    }
}

/// <summary>
/// Batch-1 latency of several swappers measured in interleaved rounds (one run of each model per round), so
/// background load hits them alike: the fair way to compare FP32 with INT8, or an original with a pruned model.
/// </summary>
public static class InterleavedLatency
{
    /// <summary>
    /// Loads every model (same resolution required), warms each up, then times <paramref name="rounds"/> rounds.
    /// ONNX Runtime's thread spinning is turned off so one session's idle threads do not steal the running one's cores.
    /// With <paramref name="repeats"/> &gt; 1 the rounds are repeated, each repeat starting with the next model (so
    /// no model always follows the same one); p50/p90 pool every run, <see cref="InterleavedTime.RepeatP50Ms"/> keeps each
    /// repeat's p50 so that a ratio can be given with its spread.
    /// </summary>
    public static List<InterleavedTime> Measure(IReadOnlyList<string> modelPaths, int rounds = 60, int threads = 0, int repeats = 1)
    {
        if (repeats < 1) throw new ArgumentException("repeats must be at least 1");
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
            var repeatP50 = swappers.Select(_ => new List<double>()).ToList();
            for (int repeat = 0; repeat < repeats; repeat++)
            {
                var these = swappers.Select(_ => new List<double>()).ToList();
                for (int round = 0; round < rounds; round++)
                    for (int j = 0; j < swappers.Count; j++)
                    {
                        int k = (j + repeat) % swappers.Count;
                        var w = Stopwatch.StartNew();
                        swappers[k].Run(target, source, 1);
                        these[k].Add(w.Elapsed.TotalMilliseconds);
                    }
                for (int k = 0; k < swappers.Count; k++)
                {
                    times[k].AddRange(these[k]);
                    repeatP50[k].Add(SwapBench.Percentile(these[k], 50));
                }
            }
            return modelPaths.Select((m, k) => new InterleavedTime(m, SwapBench.Percentile(times[k], 50), SwapBench.Percentile(times[k], 90), repeatP50[k])).ToList();
        }
        finally
        {
            foreach (var s in swappers) s.Dispose();
        }
    }
}
