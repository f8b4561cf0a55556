namespace FaceFusion.Compress.Imaging;

/// <summary>
/// Colour correction of a swapped crop to its target: per-channel mean and standard deviation matched in CIE L*a*b*
/// (a perceptual colour space, so brightness and tint are corrected separately), inside a weight mask.
/// </summary>
public static class ColorTransfer
{
    /// <summary>
    /// Returns a new image: <paramref name="source"/> with its L*a*b* mean and deviation, weighted by
    /// <paramref name="weight"/> (one value per pixel), matched to <paramref name="reference"/>'s over the same weights.
    /// Returns <paramref name="source"/> itself when the weights sum below 1. Neither input is modified.
    /// </summary>
    /// <remarks>
    /// Hot path of every swapped frame: sRGB decoding is a 256-entry table, encoding an exact threshold search (the byte
    /// whose half-step boundaries enclose the linear value, as rounding the gamma curve would give), cube roots an
    /// interpolated table, and the pixels are split over the cores in chunks.
    /// </remarks>
    public static RgbImage MatchLab(RgbImage source, RgbImage reference, float[] weight)
    {
        int n = source.Width * source.Height;
        if (reference.Width != source.Width || reference.Height != source.Height || weight.Length != n)
            throw new ArgumentException($"colour transfer needs images of one size and one weight per pixel: {source.Width}x{source.Height}, {reference.Width}x{reference.Height}, {weight.Length} weights");
        double total = 0;
        foreach (var w in weight) total += w;
        if (total < 1) return source;
        var src = new float[n * 3];
        int chunks = n >= 16384 ? Environment.ProcessorCount : 1;
        var partial = new double[chunks, 12];
        Parallel.For(0, chunks, c =>
        {
            Span<float> lab = stackalloc float[3];
            Span<double> sums = stackalloc double[12];
            sums.Clear();
            int from = (int)((long)n * c / chunks), to = (int)((long)n * (c + 1) / chunks);
            for (int i = from; i < to; i++)
            {
                ToLab(source.Pixels, i, src.AsSpan(i * 3, 3));
                float w = weight[i];
                if (w == 0) continue;
                ToLab(reference.Pixels, i, lab);
                for (int k = 0; k < 3; k++)
                {
                    double a = src[i * 3 + k], b = lab[k];
                    sums[k] += w * a; sums[3 + k] += w * a * a;
                    sums[6 + k] += w * b; sums[9 + k] += w * b * b;
                }
            }
            for (int k = 0; k < 12; k++) partial[c, k] = sums[k];
        });
        var scale = new float[3];
        var shift = new float[3];
        for (int k = 0; k < 3; k++)
        {
            double sa = 0, saa = 0, sb = 0, sbb = 0;
            for (int c = 0; c < chunks; c++) { sa += partial[c, k]; saa += partial[c, 3 + k]; sb += partial[c, 6 + k]; sbb += partial[c, 9 + k]; }
            double meanS = sa / total, meanR = sb / total;
            double stdS = Math.Sqrt(Math.Max(0, saa / total - meanS * meanS)) + 1e-6;
            double stdR = Math.Sqrt(Math.Max(0, sbb / total - meanR * meanR)) + 1e-6;
            scale[k] = (float)(stdR / stdS);
            shift[k] = (float)(meanR - meanS * stdR / stdS);
        }
        var result = new RgbImage(source.Width, source.Height);
        Parallel.For(0, chunks, c =>
        {
            Span<float> lab = stackalloc float[3];
            int from = (int)((long)n * c / chunks), to = (int)((long)n * (c + 1) / chunks);
            for (int i = from; i < to; i++)
            {
                for (int k = 0; k < 3; k++) lab[k] = src[i * 3 + k] * scale[k] + shift[k];
                FromLab(lab, result.Pixels, i);
            }
        });
        return result;
    }

    /// <summary>sRGB byte → linear light.</summary>
    private static readonly float[] LinearOf = Enumerable.Range(0, 256).Select(v => (float)Linear(v)).ToArray();

    /// <summary>Linear light at each byte's upper rounding boundary (b + 0.5): the encoded byte of a linear value is the
    /// number of boundaries at or below it.</summary>
    private static readonly float[] Boundary = Enumerable.Range(0, 255).Select(b => (float)Linear(b + 0.5)).ToArray();

    /// <summary>A starting byte for the boundary search per 1/16384 of linear light (never above the answer).</summary>
    private static readonly byte[] EncodeStart = Enumerable.Range(0, 16385).Select(j =>
    {
        float v = j / 16384f;
        int b = 0;
        while (b < 255 && v >= Boundary[b]) b++;
        return (byte)b;
    }).ToArray();

    private static double Linear(double v) { v /= 255; return v <= 0.04045 ? v / 12.92 : Math.Pow((v + 0.055) / 1.055, 2.4); }

    private static byte Encode(float v)
    {
        if (!(v > 0)) return 0;
        if (v >= 1) return 255;
        int b = EncodeStart[(int)(v * 16384)];
        while (b < 255 && v >= Boundary[b]) b++;
        return (byte)b;
    }

    /// <summary>Cube roots on [0, 1.25] at <see cref="CbrtSteps"/> + 1 points, interpolated linearly: XYZ over the
    /// white point stays within it, and the error (below 1e-5 above the curve's linear part) is far under one byte.</summary>
    private const int CbrtSteps = 8192;
    private static readonly float[] CbrtTable = Enumerable.Range(0, CbrtSteps + 2).Select(j => (float)Math.Cbrt(j * 1.25 / CbrtSteps)).ToArray();

    private static float F(float t)
    {
        if (!(t > 216f / 24389)) return (24389f / 27 * t + 16) / 116;
        if (t >= 1.25f) return MathF.Cbrt(t);
        float u = t * (CbrtSteps / 1.25f);
        int j = (int)u;
        return CbrtTable[j] + (u - j) * (CbrtTable[j + 1] - CbrtTable[j]);
    }
    private static float FInv(float t) => t * t * t > 216f / 24389 ? t * t * t : (116 * t - 16) / (24389f / 27);

    private static void ToLab(byte[] rgb, int i, Span<float> lab)
    {
        float r = LinearOf[rgb[i * 3]], g = LinearOf[rgb[i * 3 + 1]], b = LinearOf[rgb[i * 3 + 2]];
        float x = (0.4124f * r + 0.3576f * g + 0.1805f * b) / 0.95047f;
        float y = 0.2126f * r + 0.7152f * g + 0.0722f * b;
        float z = (0.0193f * r + 0.1192f * g + 0.9505f * b) / 1.08883f;
        float fx = F(x), fy = F(y), fz = F(z);
        lab[0] = 116 * fy - 16;
        lab[1] = 500 * (fx - fy);
        lab[2] = 200 * (fy - fz);
    }

    private static void FromLab(ReadOnlySpan<float> lab, byte[] rgb, int i)
    {
        float fy = (lab[0] + 16) / 116, fx = fy + lab[1] / 500, fz = fy - lab[2] / 200;
        float x = FInv(fx) * 0.95047f, y = FInv(fy), z = FInv(fz) * 1.08883f;
        rgb[i * 3] = Encode(3.2406f * x - 1.5372f * y - 0.4986f * z);
        rgb[i * 3 + 1] = Encode(-0.9689f * x + 1.8758f * y + 0.0415f * z);
        rgb[i * 3 + 2] = Encode(0.0557f * x - 0.2040f * y + 1.0570f * z);
    }
}
