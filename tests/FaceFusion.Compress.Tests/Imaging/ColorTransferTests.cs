using FaceFusion.Compress.Imaging;

namespace FaceFusion.Compress.Tests.Imaging;

/// <summary>The fast L*a*b* colour transfer against the textbook double-precision one, written out here.</summary>
public class ColorTransferTests
{
    [Fact]
    public void MatchLab_EqualsTheDoublePrecisionDefinition_AndTakesTheReferenceStatistics()
    {
        const int size = 200;
        var rng = new Random(4);
        var source = new RgbImage(size, size);
        var reference = new RgbImage(size, size);
        for (int i = 0; i < size * size; i++)
        {
            // A bluish face-like gradient and a warmer, darker one: the transfer has work to do.
            int y = i / size, x = i % size;
            source.Pixels[i * 3] = (byte)Math.Clamp(90 + x / 3 + rng.Next(20), 0, 255);
            source.Pixels[i * 3 + 1] = (byte)Math.Clamp(110 + y / 4 + rng.Next(20), 0, 255);
            source.Pixels[i * 3 + 2] = (byte)Math.Clamp(170 + rng.Next(40), 0, 255);
            reference.Pixels[i * 3] = (byte)Math.Clamp(150 + y / 5 + rng.Next(30), 0, 255);
            reference.Pixels[i * 3 + 1] = (byte)Math.Clamp(90 + rng.Next(30), 0, 255);
            reference.Pixels[i * 3 + 2] = (byte)Math.Clamp(60 + x / 6 + rng.Next(30), 0, 255);
        }
        var weight = new float[size * size];
        for (int i = 0; i < weight.Length; i++)
        {
            double dx = i % size - size / 2.0, dy = i / size - size / 2.0;
            weight[i] = (float)Math.Clamp(1.5 - Math.Sqrt(dx * dx + dy * dy) / (size / 3.0), 0, 1);
        }
        var fast = ColorTransfer.MatchLab(source, reference, weight);
        var exact = Definition(source, reference, weight);
        int off = 0, worst = 0;
        double squared = 0;
        for (int i = 0; i < fast.Pixels.Length; i++)
        {
            int d = Math.Abs(fast.Pixels[i] - exact.Pixels[i]);
            if (d > 0) off++;
            worst = Math.Max(worst, d);
            squared += d * d;
        }
        double psnr = 10 * Math.Log10(255.0 * 255 / Math.Max(squared / fast.Pixels.Length, 1e-12));
        Assert.True(worst <= 1 && off < fast.Pixels.Length / 100 && psnr >= 45, $"{off} values differ, worst by {worst}, {psnr:0.0} dB");
        // Nothing to match: the source comes back as it is.
        Assert.Same(source, ColorTransfer.MatchLab(source, reference, new float[size * size]));
        Assert.Throws<ArgumentException>(() => ColorTransfer.MatchLab(source, new RgbImage(10, 10), weight));
    }

    /// <summary>sRGB → XYZ (D65) → L*a*b*, per-channel weighted mean/deviation transfer, and back, all in double.</summary>
    private static RgbImage Definition(RgbImage source, RgbImage reference, float[] weight)
    {
        static double Linear(double v) { v /= 255; return v <= 0.04045 ? v / 12.92 : Math.Pow((v + 0.055) / 1.055, 2.4); }
        static double Gamma(double v) => 255 * (v <= 0.0031308 ? 12.92 * v : 1.055 * Math.Pow(v, 1 / 2.4) - 0.055);
        static double F(double t) => t > 216.0 / 24389 ? Math.Cbrt(t) : (24389.0 / 27 * t + 16) / 116;
        static double FInv(double t) => t * t * t > 216.0 / 24389 ? t * t * t : (116 * t - 16) / (24389.0 / 27);
        static double[] Lab(byte[] p, int i)
        {
            double r = Linear(p[i * 3]), g = Linear(p[i * 3 + 1]), b = Linear(p[i * 3 + 2]);
            double fx = F((0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047), fy = F(0.2126 * r + 0.7152 * g + 0.0722 * b), fz = F((0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883);
            return [116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)];
        }
        int n = source.Width * source.Height;
        var s = Enumerable.Range(0, n).Select(i => Lab(source.Pixels, i)).ToArray();
        var r = Enumerable.Range(0, n).Select(i => Lab(reference.Pixels, i)).ToArray();
        double total = weight.Sum(w => (double)w);
        var result = new RgbImage(source.Width, source.Height);
        var stats = new (double Ms, double Ss, double Mr, double Sr)[3];
        for (int c = 0; c < 3; c++)
        {
            double ms = 0, mr = 0, vs = 0, vr = 0;
            for (int i = 0; i < n; i++) { ms += weight[i] * s[i][c]; mr += weight[i] * r[i][c]; }
            ms /= total; mr /= total;
            for (int i = 0; i < n; i++) { vs += weight[i] * Math.Pow(s[i][c] - ms, 2); vr += weight[i] * Math.Pow(r[i][c] - mr, 2); }
            stats[c] = (ms, Math.Sqrt(vs / total) + 1e-6, mr, Math.Sqrt(vr / total) + 1e-6);
        }
        for (int i = 0; i < n; i++)
        {
            var lab = Enumerable.Range(0, 3).Select(c => (s[i][c] - stats[c].Ms) * (stats[c].Sr / stats[c].Ss) + stats[c].Mr).ToArray();
            double fy = (lab[0] + 16) / 116, fx = fy + lab[1] / 500, fz = fy - lab[2] / 200;
            double x = FInv(fx) * 0.95047, y = FInv(fy), z = FInv(fz) * 1.08883;
            double[] rgb = [3.2406 * x - 1.5372 * y - 0.4986 * z, -0.9689 * x + 1.8758 * y + 0.0415 * z, 0.0557 * x - 0.2040 * y + 1.0570 * z];
            for (int c = 0; c < 3; c++) result.Pixels[i * 3 + c] = (byte)Math.Clamp(Math.Round(Gamma(Math.Max(0, rgb[c]))), 0, 255);
        }
        return result;
    }
}
