using System.Globalization;

namespace FaceFusion.Compress.Pruning;

/// <summary>What iterative pruning aims for: MACs, params or ONNX Runtime p50 latency, as a fraction of the original or an absolute value.</summary>
public sealed record PruneTarget(string Metric, double Value, bool IsFraction)
{
    public const string Macs = "macs", Params = "params", LatencyMs = "latency_ms";

    /// <summary>Parses "0.6" (a fraction of the original), "1.2G"/"800M"/"35k" (absolute) or "8ms" (latency).</summary>
    public static PruneTarget Parse(string metric, string text)
    {
        var t = text.Trim();
        double Number(string s) => double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v > 0
            ? v : throw new FormatException($"target '{text}' for {metric}: expected a fraction like 0.6 or a value with a unit like 1.2G or 8ms");
        if (metric == LatencyMs)
        {
            if (t.EndsWith("ms", StringComparison.OrdinalIgnoreCase)) return new(metric, Number(t[..^2]), false);
            var v = Number(t);
            return v <= 1 ? new(metric, v, true) : new(metric, v, false);
        }
        double scale = char.ToUpperInvariant(t[^1]) switch { 'G' => 1e9, 'M' => 1e6, 'K' => 1e3, _ => 0 };
        if (scale > 0) return new(metric, Number(t[..^1]) * scale, false);
        var value = Number(t);
        return value <= 1 ? new(metric, value, true) : new(metric, value, false);
    }

    /// <summary>The absolute goal given the original's value of the metric.</summary>
    public double Goal(double original) => IsFraction ? Value * original : Value;

    public override string ToString() => IsFraction ? $"{Metric} ≤ {Value:0.###} × original" : $"{Metric} ≤ {Value:G4}";
}
