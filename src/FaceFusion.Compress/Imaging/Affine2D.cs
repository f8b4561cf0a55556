using System.Globalization;

namespace FaceFusion.Compress.Imaging;

/// <summary>A 2×3 affine transform [[A, B, C], [D, E, F]]: x' = A·x + B·y + C, y' = D·x + E·y + F.</summary>
public readonly record struct Affine2D(double A, double B, double C, double D, double E, double F)
{
    public static Affine2D Identity => new(1, 0, 0, 0, 1, 0);

    public (double X, double Y) Apply(double x, double y) => (A * x + B * y + C, D * x + E * y + F);

    /// <summary>The transform applied after <paramref name="first"/>: this ∘ first.</summary>
    public Affine2D After(Affine2D first) => new(
        A * first.A + B * first.D, A * first.B + B * first.E, A * first.C + B * first.F + C,
        D * first.A + E * first.D, D * first.B + E * first.E, D * first.C + E * first.F + F);

    public Affine2D Inverse()
    {
        double det = A * E - B * D;
        if (Math.Abs(det) < 1e-12) throw new InvalidOperationException("affine transform is singular");
        double ia = E / det, ib = -B / det, id = -D / det, ie = A / det;
        return new(ia, ib, -(ia * C + ib * F), id, ie, -(id * C + ie * F));
    }

    /// <summary>Uniform scale factor of a similarity transform.</summary>
    public double Scale => Math.Sqrt(Math.Abs(A * E - B * D));

    public double[] ToArray() => [A, B, C, D, E, F];

    public static Affine2D FromArray(IReadOnlyList<double> v) =>
        v.Count == 6 ? new(v[0], v[1], v[2], v[3], v[4], v[5]) : throw new FormatException($"an affine needs 6 numbers, got {v.Count}");

    public override string ToString() =>
        string.Join(' ', ToArray().Select(v => v.ToString("R", CultureInfo.InvariantCulture)));

    public static Affine2D Parse(string text) =>
        FromArray(text.Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Select(s => double.Parse(s, CultureInfo.InvariantCulture)).ToArray());

    /// <summary>
    /// Least-squares similarity transform (rotation, uniform scale, translation; no reflection) mapping
    /// <paramref name="from"/> onto <paramref name="to"/> (Umeyama 1991).
    /// </summary>
    public static Affine2D EstimateSimilarity(IReadOnlyList<(double X, double Y)> from, IReadOnlyList<(double X, double Y)> to)
    {
        if (from.Count != to.Count || from.Count < 2)
            throw new ArgumentException("need at least two corresponding points");
        int n = from.Count;
        double mx = 0, my = 0, ux = 0, uy = 0;
        for (int i = 0; i < n; i++) { mx += from[i].X; my += from[i].Y; ux += to[i].X; uy += to[i].Y; }
        mx /= n; my /= n; ux /= n; uy /= n;
        // For 2-D similarity, the optimum has a closed form: a = Σ(p·q)/Σ|p|², b = Σ(p×q)/Σ|p|² on centred points.
        double dot = 0, cross = 0, norm = 0;
        for (int i = 0; i < n; i++)
        {
            double px = from[i].X - mx, py = from[i].Y - my, qx = to[i].X - ux, qy = to[i].Y - uy;
            dot += px * qx + py * qy;
            cross += px * qy - py * qx;
            norm += px * px + py * py;
        }
        if (norm < 1e-12) throw new ArgumentException("source points are all at one place");
        double a = dot / norm, b = cross / norm;
        return new Affine2D(a, -b, ux - (a * mx - b * my), b, a, uy - (b * mx + a * my));
    }
}
