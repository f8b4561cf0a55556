using TorchSharp;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Training;

/// <summary>Image quality metrics on [N,C,H,W] batches in [−1,1] (dynamic range 2).</summary>
public static class ImageMetrics
{
    /// <summary>PSNR = 10·log10(MAX²/MSE) per image, MAX = 2 for [−1,1]. Returns [N] (dB); identical images give +∞ capped at 100.</summary>
    public static Tensor Psnr(Tensor a, Tensor b, double dataRange = 2.0)
    {
        using var scope = NewDisposeScope();
        var mse = a.sub(b).pow(2).mean([1, 2, 3]).clamp_min(1e-10);
        return mse.reciprocal().mul(dataRange * dataRange).log10().mul(10).clamp_max(100).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// SSIM per image with an 11×11 Gaussian window (σ = 1.5), constants K1 = 0.01, K2 = 0.03 on the data range,
    /// averaged over channels and valid positions. Differentiable. Returns [N].
    /// </summary>
    public static Tensor Ssim(Tensor a, Tensor b, double dataRange = 2.0)
    {
        using var scope = NewDisposeScope();
        long channels = a.shape[1];
        int size = (int)Math.Min(11, Math.Min(a.shape[2], a.shape[3]));
        var window = GaussianWindow(size, 1.5, channels, a.dtype, a.device);
        Tensor Filter(Tensor x) => nn.functional.conv2d(x, window, groups: channels);
        double c1 = Math.Pow(0.01 * dataRange, 2), c2 = Math.Pow(0.03 * dataRange, 2);
        var muA = Filter(a);
        var muB = Filter(b);
        var sigmaA = Filter(a.mul(a)).sub(muA.mul(muA));
        var sigmaB = Filter(b.mul(b)).sub(muB.mul(muB));
        var sigmaAB = Filter(a.mul(b)).sub(muA.mul(muB));
        var map = muA.mul(muB).mul(2).add(c1).mul(sigmaAB.mul(2).add(c2))
            .div(muA.pow(2).add(muB.pow(2)).add(c1).mul(sigmaA.add(sigmaB).add(c2)));
        return map.mean([1, 2, 3]).MoveToOuterDisposeScope();
    }

    private static Tensor GaussianWindow(int size, double sigma, long channels, ScalarType dtype, Device device)
    {
        var g = Enumerable.Range(0, size).Select(i => Math.Exp(-Math.Pow(i - (size - 1) / 2.0, 2) / (2 * sigma * sigma))).ToArray();
        double sum = g.Sum();
        var values = new float[size * size];
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++) values[y * size + x] = (float)(g[y] * g[x] / (sum * sum));
        return tensor(values, [1, 1, size, size], dtype: dtype, device: device).expand(channels, 1, size, size).contiguous();
    }
}
