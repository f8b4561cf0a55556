namespace FaceFusion.Compress.Imaging;

/// <summary>
/// Seamless (Poisson) cloning: inside the region, the result keeps the pasted image's gradients while meeting the
/// background at the region's border. Solved for the correction g = result − pasted, which is harmonic (∇²g = 0)
/// inside the region and equals background − pasted on its border, by conjugate gradients on the 4-neighbour
/// Laplacian, one channel at a time.
/// </summary>
public static class PoissonBlend
{
    /// <summary>
    /// Corrects <paramref name="pasted"/> in place over the pixels where <paramref name="inside"/> is true.
    /// Images are interleaved RGB floats of <paramref name="width"/>×<paramref name="height"/>; pixels outside the
    /// region are the boundary: their correction is background − pasted (0 where <paramref name="pastedValid"/> is false).
    /// Returns the number of conjugate-gradient iterations used for the slowest channel.
    /// </summary>
    public static int Blend(float[] pasted, float[] background, bool[] inside, bool[] pastedValid, int width, int height,
        int maxIterations = 400, double tolerance = 0.1)
    {
        var index = new int[width * height];
        int n = 0;
        for (int i = 0; i < index.Length; i++) index[i] = inside[i] ? n++ : -1;
        if (n == 0) return 0;
        int slowest = 0;
        var b = new double[n];
        var x = new double[n];
        var r = new double[n];
        var p = new double[n];
        var ap = new double[n];
        for (int c = 0; c < 3; c++)
        {
            Array.Clear(b);
            Array.Clear(x);
            // Known border values move to the right-hand side: 4·g(i) − Σ g(in-region neighbours) = Σ g(border neighbours).
            for (int y = 0; y < height; y++)
                for (int xx = 0; xx < width; xx++)
                {
                    int k = index[y * width + xx];
                    if (k < 0) continue;
                    foreach (var (nx, ny) in Neighbours(xx, y))
                    {
                        if (nx < 0 || ny < 0 || nx >= width || ny >= height) continue; // outside the image: g = 0
                        int j = ny * width + nx;
                        if (index[j] < 0) b[k] += pastedValid[j] ? background[j * 3 + c] - pasted[j * 3 + c] : 0;
                    }
                }
            Multiply(x, ap, index, width, height);
            double rr = 0;
            for (int k = 0; k < n; k++) { r[k] = b[k] - ap[k]; p[k] = r[k]; rr += r[k] * r[k]; }
            int iteration = 0;
            double limit = tolerance * tolerance * n;
            while (iteration < maxIterations && rr > limit)
            {
                Multiply(p, ap, index, width, height);
                double pap = 0;
                for (int k = 0; k < n; k++) pap += p[k] * ap[k];
                if (pap <= 0) break;
                double alpha = rr / pap, next = 0;
                for (int k = 0; k < n; k++) { x[k] += alpha * p[k]; r[k] -= alpha * ap[k]; next += r[k] * r[k]; }
                double beta = next / rr;
                for (int k = 0; k < n; k++) p[k] = r[k] + beta * p[k];
                rr = next;
                iteration++;
            }
            slowest = Math.Max(slowest, iteration);
            for (int i = 0; i < index.Length; i++)
                if (index[i] >= 0) pasted[i * 3 + c] += (float)x[index[i]];
        }
        return slowest;
    }

    private static (int X, int Y)[] Neighbours(int x, int y) => [(x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)];

    /// <summary>y = A·v with A = 4·I − (in-region neighbours): symmetric positive definite.</summary>
    private static void Multiply(double[] v, double[] y, int[] index, int width, int height)
    {
        Parallel.For(0, height, row =>
        {
            for (int col = 0; col < width; col++)
            {
                int k = index[row * width + col];
                if (k < 0) continue;
                double sum = 4 * v[k];
                if (col > 0 && index[row * width + col - 1] is var l and >= 0) sum -= v[l];
                if (col < width - 1 && index[row * width + col + 1] is var rt and >= 0) sum -= v[rt];
                if (row > 0 && index[(row - 1) * width + col] is var u and >= 0) sum -= v[u];
                if (row < height - 1 && index[(row + 1) * width + col] is var d and >= 0) sum -= v[d];
                y[k] = sum;
            }
        });
    }
}
