using FaceFusion.Compress.Data;
using FaceFusion.Compress.Imaging;

namespace FaceFusion.Compress.Tests.Data;

public class ManifestTests
{
    [Fact]
    public void Manifest_RoundTripsEveryColumn()
    {
        var dir = TestAssets.TempDir();
        var points = Enumerable.Range(0, 68).Select(i => (i * 1.5, 200 - i * 0.25)).ToArray();
        var affine = new Affine2D(1.25, -0.5, 10.125, 0.5, 1.25, -3.75);
        var records = new List<FaceRecord>
        {
            new()
            {
                Id = "franck-f00012", Identity = "franck", SourceFile = "cache:media/videos/franck.mp4", Frame = 12,
                Split = Splits.Train, BoxX1 = 1.5f, BoxY1 = 2.25f, BoxX2 = 100.75f, BoxY2 = 120f, DetectorScore = 0.987f,
                Landmarks = FaceRecord.FormatPoints(points), Affine = affine.ToString(), CropSize = 256,
                CropFile = "crops/256/franck-f00012.png", EmbeddingFile = FaceManifest.EmbeddingsFileName,
                EmbeddingOffset = 0, YawDegrees = -12.5f, Brightness = 101.25f,
            },
            new()
            {
                Id = "sample1-face0", Identity = "sample1-face0", SourceFile = "/data/a, \"quoted\".jpg", Frame = -1,
                Split = Splits.Test, Landmarks = "", Affine = Affine2D.Identity.ToString(), CropSize = 256,
                CropFile = "crops/256/sample1-face0.png", EmbeddingFile = FaceManifest.EmbeddingsFileName, EmbeddingOffset = 1,
            },
        };
        var path = Path.Combine(dir, FaceManifest.FileName);
        FaceManifest.Write(path, records);
        var back = FaceManifest.Read(path);

        Assert.Equal(records.Count, back.Count);
        foreach (var (a, b) in records.Zip(back))
            Assert.Equal(System.Text.Json.JsonSerializer.Serialize(a), System.Text.Json.JsonSerializer.Serialize(b));
        Assert.Equal(affine, Affine2D.Parse(back[0].Affine));
        Assert.Equal(points, back[0].LandmarkPoints());
        Assert.False(File.Exists(path + ".partial"));
    }

    [Fact]
    public void MalformedManifest_NamesTheFile()
    {
        var dir = TestAssets.TempDir();
        var path = Path.Combine(dir, FaceManifest.FileName);
        File.WriteAllText(path, "id,identity,frame\nx,y,not-a-number\n");
        var e = Assert.Throws<InvalidDataException>(() => FaceManifest.Read(path));
        Assert.StartsWith(path, e.Message);
    }

    [Fact]
    public void MissingManifest_SaysHowToMakeIt()
    {
        var path = Path.Combine(TestAssets.TempDir(), FaceManifest.FileName);
        var e = Assert.Throws<FileNotFoundException>(() => FaceManifest.Read(path));
        Assert.Contains("ffc data prepare", e.Message);
    }
}
