using FaceFusion.Compress.Data;
using FaceFusion.Compress.Imaging;

namespace FaceFusion.Compress.Tests.Imaging;

public class AlignmentTests
{
    [Fact]
    public void EstimateSimilarity_RecoversAKnownTransform()
    {
        var truth = Similarity(angleDeg: 17, scale: 2.3, tx: 40, ty: -12);
        var from = new (double X, double Y)[] { (0, 0), (10, 3), (4, 9), (-6, 2), (3, -7) };
        var to = from.Select(p => truth.Apply(p.X, p.Y)).ToArray();
        var est = Affine2D.EstimateSimilarity(from, to);
        Assert.Equal(truth.ToArray(), est.ToArray(), (a, b) => Math.Abs(a - b) < 1e-9);
    }

    [Fact]
    public void Inverse_ComposesToIdentity()
    {
        var t = Similarity(-33, 0.7, 5, 9);
        var id = t.After(t.Inverse());
        Assert.Equal(Affine2D.Identity.ToArray(), id.ToArray(), (a, b) => Math.Abs(a - b) < 1e-12);
    }

    [Theory]
    [InlineData(128, 0.0, 1.0)]
    [InlineData(128, 14.0, 2.4)]
    [InlineData(256, -21.0, 3.1)]
    [InlineData(64, 8.0, 1.3)]
    public void Warp_PutsKnownLandmarksOnTheTemplate_WithinHalfAPixel(int size, double angle, double scale)
    {
        // Five smooth blobs at the template points mapped into a larger "photo" by a known similarity.
        var template = FaceTemplates.InPixels(FaceTemplates.Arcface128, size);
        var cropToPhoto = Similarity(angle, scale, 97.3, 61.8);
        var photoPoints = template.Select(p => cropToPhoto.Apply(p.X, p.Y)).ToArray();
        var photo = new RgbImage(800, 800);
        double sigma = 2.0 * scale;
        foreach (var (px, py) in photoPoints)
            for (int y = (int)(py - 4 * sigma); y <= py + 4 * sigma; y++)
                for (int x = (int)(px - 4 * sigma); x <= px + 4 * sigma; x++)
                {
                    double v = 255 * Math.Exp(-((x - px) * (x - px) + (y - py) * (y - py)) / (2 * sigma * sigma));
                    for (int c = 0; c < 3; c++) photo[x, y, c] = (byte)Math.Max(photo[x, y, c], Math.Round(v));
                }

        var transform = FaceTemplates.AlignmentTransform(photoPoints, FaceTemplates.Arcface128, size);
        var crop = photo.WarpAffine(transform, size, size);

        foreach (var (tx, ty) in template)
        {
            var (cx, cy) = Centroid(crop, tx, ty, radius: 5);
            Assert.InRange(Math.Abs(cx - tx), 0, 0.5);
            Assert.InRange(Math.Abs(cy - ty), 0, 0.5);
        }
    }

    [Fact]
    public void FivePoints_AreEyeCentresNoseAndMouthCorners()
    {
        var p68 = Enumerable.Range(0, 68).Select(i => ((double)i, (double)(2 * i))).ToArray();
        var five = FaceTemplates.FivePointsFrom68(p68);
        Assert.Equal((38.5, 77.0), five[0]);
        Assert.Equal((44.5, 89.0), five[1]);
        Assert.Equal((30.0, 60.0), five[2]);
        Assert.Equal((48.0, 96.0), five[3]);
        Assert.Equal((54.0, 108.0), five[4]);
        Assert.Throws<ArgumentException>(() => FaceTemplates.FivePointsFrom68(p68.Take(5).ToArray()));
    }

    [Fact]
    public void CropToCrop_MapsTheSwapperTemplateNearTheEmbedderTemplate()
    {
        var map = FaceTemplates.CropToCrop(FaceTemplates.Arcface128, 128, FaceTemplates.Arcface112V2, 112);
        var from = FaceTemplates.InPixels(FaceTemplates.Arcface128, 128);
        var to = FaceTemplates.InPixels(FaceTemplates.Arcface112V2, 112);
        for (int i = 0; i < 5; i++)
        {
            var (x, y) = map.Apply(from[i].X, from[i].Y);
            Assert.True(Math.Abs(x - to[i].X) < 1.5 && Math.Abs(y - to[i].Y) < 1.5, $"point {i}: ({x:0.00},{y:0.00}) vs {to[i]}");
        }
    }

    private static Affine2D Similarity(double angleDeg, double scale, double tx, double ty)
    {
        double a = angleDeg * Math.PI / 180, c = scale * Math.Cos(a), s = scale * Math.Sin(a);
        return new Affine2D(c, -s, tx, s, c, ty);
    }

    private static (double X, double Y) Centroid(RgbImage image, double x0, double y0, int radius)
    {
        double sum = 0, sx = 0, sy = 0;
        for (int y = (int)y0 - radius; y <= (int)y0 + radius + 1; y++)
            for (int x = (int)x0 - radius; x <= (int)x0 + radius + 1; x++)
            {
                if (x < 0 || y < 0 || x >= image.Width || y >= image.Height) continue;
                double v = image[x, y, 0];
                sum += v; sx += v * x; sy += v * y;
            }
        return (sx / sum, sy / sum);
    }
}
