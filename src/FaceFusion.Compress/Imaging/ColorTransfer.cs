namespace FaceFusion.Compress.Imaging;

/// <summary>
/// Colour correction of a swapped crop to its target: per-channel mean and standard deviation matched in CIE L*a*b*
/// (a perceptual colour space, so brightness and tint are corrected separately), inside a weight mask.
/// </summary>
public static class ColorTransfer
{
    public static RgbImage MatchLab(RgbImage source, RgbImage reference, float[] weight)
    {
        int n = source.Width * source.Height;
        var src = new double[n * 3];
        var refLab = new double[n * 3];
        for (int i = 0; i < n; i++)
        {
            ToLab(source.Pixels, i, src);
            ToLab(reference.Pixels, i, refLab);
        }
        var result = new RgbImage(source.Width, source.Height);
        var stats = new (double MeanS, double StdS, double MeanR, double StdR)[3];
        double total = weight.Sum();
        if (total < 1) return source;
        for (int c = 0; c < 3; c++)
        {
            double ms = 0, mr = 0;
            for (int i = 0; i < n; i++) { ms += weight[i] * src[i * 3 + c]; mr += weight[i] * refLab[i * 3 + c]; }
            ms /= total; mr /= total;
            double vs = 0, vr = 0;
            for (int i = 0; i < n; i++) { vs += weight[i] * Math.Pow(src[i * 3 + c] - ms, 2); vr += weight[i] * Math.Pow(refLab[i * 3 + c] - mr, 2); }
            stats[c] = (ms, Math.Sqrt(vs / total) + 1e-6, mr, Math.Sqrt(vr / total) + 1e-6);
        }
        var lab = new double[3];
        for (int i = 0; i < n; i++)
        {
            for (int c = 0; c < 3; c++)
                lab[c] = (src[i * 3 + c] - stats[c].MeanS) * (stats[c].StdR / stats[c].StdS) + stats[c].MeanR;
            FromLab(lab, result.Pixels, i);
        }
        return result;
    }

    private static double Linear(double v) { v /= 255; return v <= 0.04045 ? v / 12.92 : Math.Pow((v + 0.055) / 1.055, 2.4); }
    private static double Gamma(double v) => 255 * (v <= 0.0031308 ? 12.92 * v : 1.055 * Math.Pow(v, 1 / 2.4) - 0.055);
    private static double F(double t) => t > 216.0 / 24389 ? Math.Cbrt(t) : (24389.0 / 27 * t + 16) / 116;
    private static double FInv(double t) => t * t * t > 216.0 / 24389 ? t * t * t : (116 * t - 16) / (24389.0 / 27);

    private static void ToLab(byte[] rgb, int i, double[] lab)
    {
        double r = Linear(rgb[i * 3]), g = Linear(rgb[i * 3 + 1]), b = Linear(rgb[i * 3 + 2]);
        double x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047;
        double y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
        double z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883;
        double fx = F(x), fy = F(y), fz = F(z);
        lab[i * 3] = 116 * fy - 16;
        lab[i * 3 + 1] = 500 * (fx - fy);
        lab[i * 3 + 2] = 200 * (fy - fz);
    }

    private static void FromLab(double[] lab, byte[] rgb, int i)
    {
        double fy = (lab[0] + 16) / 116, fx = fy + lab[1] / 500, fz = fy - lab[2] / 200;
        double x = FInv(fx) * 0.95047, y = FInv(fy), z = FInv(fz) * 1.08883;
        double r = 3.2406 * x - 1.5372 * y - 0.4986 * z;
        double g = -0.9689 * x + 1.8758 * y + 0.0415 * z;
        double b = 0.0557 * x - 0.2040 * y + 1.0570 * z;
        rgb[i * 3] = (byte)Math.Clamp(Math.Round(Gamma(Math.Max(0, r))), 0, 255);
        rgb[i * 3 + 1] = (byte)Math.Clamp(Math.Round(Gamma(Math.Max(0, g))), 0, 255);
        rgb[i * 3 + 2] = (byte)Math.Clamp(Math.Round(Gamma(Math.Max(0, b))), 0, 255);
    }
}
