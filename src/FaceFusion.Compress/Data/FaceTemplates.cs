using FaceFusion.Compress.Imaging;

namespace FaceFusion.Compress.Data;

/// <summary>
/// Five-point alignment templates in normalised [0,1] crop coordinates (left eye, right eye, nose tip, left and
/// right mouth corner), as FaceFusion uses them; multiply by the crop size for pixels.
/// </summary>
public static class FaceTemplates
{
    /// <summary>The swappers' template.</summary>
    public static readonly (double X, double Y)[] Arcface128 =
    [
        (0.36167656, 0.40387734), (0.63696719, 0.40235469), (0.50019687, 0.56044219),
        (0.38710391, 0.72160547), (0.61507734, 0.72034453),
    ];

    /// <summary>The recognition networks' template (112 px).</summary>
    public static readonly (double X, double Y)[] Arcface112V2 =
    [
        (0.34191607, 0.46157411), (0.65653393, 0.45983393), (0.50022500, 0.64050536),
        (0.37097589, 0.82469196), (0.63151696, 0.82325089),
    ];

    public static (double X, double Y)[] InPixels(IReadOnlyList<(double X, double Y)> template, int size) =>
        template.Select(p => (p.X * size, p.Y * size)).ToArray();

    /// <summary>Eye centres (mean of each eye's six points), nose tip (30) and mouth corners (48, 54) from 68 points.</summary>
    public static (double X, double Y)[] FivePointsFrom68(IReadOnlyList<(double X, double Y)> landmarks)
    {
        if (landmarks.Count != 68) throw new ArgumentException($"expected 68 landmarks, got {landmarks.Count}");
        (double, double) Mean(int from, int to)
        {
            double x = 0, y = 0;
            for (int i = from; i <= to; i++) { x += landmarks[i].X; y += landmarks[i].Y; }
            return (x / (to - from + 1), y / (to - from + 1));
        }
        // In image coordinates points 36–41 are the eye on the image's left (the person's right eye).
        return [Mean(36, 41), Mean(42, 47), landmarks[30], landmarks[48], landmarks[54]];
    }

    /// <summary>The similarity transform taking image points to a template scaled to <paramref name="size"/> pixels.</summary>
    public static Affine2D AlignmentTransform(IReadOnlyList<(double X, double Y)> fivePoints,
        IReadOnlyList<(double X, double Y)> template, int size) =>
        Affine2D.EstimateSimilarity(fivePoints, InPixels(template, size));

    /// <summary>
    /// The fixed similarity from a crop on <paramref name="from"/> at <paramref name="fromSize"/> px to a crop on
    /// <paramref name="to"/> at <paramref name="toSize"/> px (e.g. the swapper's 128-px arcface_128 crop to the
    /// embedder's 112-px arcface_112_v2 crop).
    /// </summary>
    public static Affine2D CropToCrop(IReadOnlyList<(double X, double Y)> from, int fromSize,
        IReadOnlyList<(double X, double Y)> to, int toSize) =>
        Affine2D.EstimateSimilarity(InPixels(from, fromSize), InPixels(to, toSize));
}
