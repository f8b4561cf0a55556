using static TorchSharp.torch;

namespace FaceFusion.Compress.Quantization;

/// <summary>Affine quantization parameters: x̂ = (q − zero_point)·scale.</summary>
public readonly record struct QuantParams(float Scale, int ZeroPoint, int QMin, int QMax)
{
    /// <summary>
    /// Asymmetric UINT8 parameters covering [min, max] (widened to include 0 so zero is exact). A zero or invalid
    /// range gets a tiny positive scale instead of dividing by zero: never NaN.
    /// </summary>
    public static QuantParams Uint8(double min, double max)
    {
        if (!double.IsFinite(min) || !double.IsFinite(max)) (min, max) = (0, 0);
        min = Math.Min(min, 0);
        max = Math.Max(max, 0);
        double scale = (max - min) / 255.0;
        if (scale < 1e-8) scale = 1e-8;
        int zero = (int)Math.Clamp(Math.Round(-min / scale), 0, 255);
        return new QuantParams((float)scale, zero, 0, 255);
    }

    /// <summary>Symmetric INT8 parameters for |x| ≤ absMax: zero point 0, range [−127, 127].</summary>
    public static QuantParams Int8Symmetric(double absMax)
    {
        double scale = double.IsFinite(absMax) && absMax > 1e-8 ? absMax / 127.0 : 1e-8;
        return new QuantParams((float)scale, 0, -127, 127);
    }

    public float Quantize(float x) => (float)Math.Clamp(Math.Round(x / Scale) + ZeroPoint, QMin, QMax);
    public float Dequantize(float q) => (q - ZeroPoint) * Scale;
}

/// <summary>Fake quantization with the straight-through estimator: x + (dequant(quant(x)) − x).detach().</summary>
public static class FakeQuant
{
    /// <summary>Per-tensor fake quantization. Gradients pass unchanged inside the range and are zero outside it.</summary>
    public static Tensor PerTensor(Tensor x, QuantParams p)
    {
        using var scope = NewDisposeScope();
        float lo = (p.QMin - p.ZeroPoint) * p.Scale, hi = (p.QMax - p.ZeroPoint) * p.Scale;
        var clamped = x.clamp(lo, hi); // clamp's gradient is zero outside [lo, hi]
        var q = clamped.div(p.Scale).round().add(p.ZeroPoint).clamp(p.QMin, p.QMax).sub(p.ZeroPoint).mul(p.Scale);
        return clamped.add(q.sub(clamped).detach()).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Symmetric per-output-channel (axis 0) fake quantization of a weight to [−<paramref name="levels"/>, <paramref name="levels"/>]
    /// (127 for full INT8, 63 for the reduced 7-bit range); returns it and the scales (max|w|/levels).
    /// </summary>
    public static (Tensor Weight, float[] Scales) PerChannelSymmetric(Tensor w, int levels = 127)
    {
        using var scope = NewDisposeScope();
        var absMax = w.detach().abs().reshape(w.shape[0], -1).max(1).values;
        var scales = absMax.div((double)levels).clamp_min(1e-8);
        var shape = new long[w.dim()];
        Array.Fill(shape, 1L);
        shape[0] = w.shape[0];
        var s = scales.reshape(shape);
        var q = w.div(s).round().clamp(-levels, levels).mul(s);
        var result = w.add(q.sub(w).detach()).MoveToOuterDisposeScope();
        return (result, scales.data<float>().ToArray());
    }
}
