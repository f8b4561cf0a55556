using System.Globalization;
using FaceFusion.Compress.Data;
using FaceFusion.Compress.Assets;
using FaceFusion.Compress.Imaging;
using FaceFusion.Compress.Judging;
using FaceFusion.Compress.Reporting;

namespace FaceFusion.Compress.Runtime;

/// <summary>
/// One model's result in a comparison: its swap, batch-1 swapper latency and identity cosine to the source (the
/// swapper's own recogniser), and the independent judge's distances of the output's face to the source's and the
/// target's faces (NaN when no face is found in the output) with its verdict: "source", "target", "neither" or "no face".
/// </summary>
public sealed record ComparedModel(string Name, double P50Ms, double IdentityCosine, RgbImage Result)
{
    public double JudgeSourceDistance { get; init; } = double.NaN;
    public double JudgeTargetDistance { get; init; } = double.NaN;
    public string Verdict { get; init; } = "";
}

/// <summary>
/// `ffc swap --compare A.onnx B.onnx`: the same swap with two (or more) models and the copy-target baseline (the
/// target unchanged), shown side by side as target | source | copy-target | A | B around the faces, each output
/// captioned with its latency, identity cosine and the judge's verdict (face-api.js's FaceRecognitionNet on the
/// face detected again and aligned, same person below 0.6).
/// </summary>
public static class SwapComparison
{
    /// <summary>The judge's view of one output: distances to source and target, and the verdict.</summary>
    private static ComparedModel Judged(ComparedModel m, IdentityJudge judge, FaceDetector detector, LandmarkDetector landmarks, float[] sourceDescriptor, float[] targetDescriptor)
    {
        var face = SwapJudging.TryLargestFaceCrop(m.Result, detector, landmarks);
        if (face is null) return m with { Verdict = "no face" };
        var d = Describe(judge, [face.Value.Crop])[0];
        double toSource = IdentityJudge.Distance(d, sourceDescriptor), toTarget = IdentityJudge.Distance(d, targetDescriptor);
        return m with { JudgeSourceDistance = toSource, JudgeTargetDistance = toTarget, Verdict = SwapJudging.Verdict(toSource, toTarget) };
    }

    /// <summary>Judge descriptors of arcface_128 crops (through the judge's dlib box, as on the full swap path).</summary>
    private static float[][] Describe(IdentityJudge judge, IReadOnlyList<RgbImage> crops)
    {
        using var pixels = JudgeVerification.ToCropTensor(crops);
        using var descriptors = judge.DescribeCrops(pixels);
        var values = descriptors.data<float>().ToArray();
        return Enumerable.Range(0, crops.Count).Select(i => values.AsSpan(i * 128, 128).ToArray()).ToArray();
    }

    /// <summary>"0.45 same" / "0.71 diff" at the judge's threshold.</summary>
    public static string Same(double distance) =>
        double.IsNaN(distance) ? "—" : string.Create(CultureInfo.InvariantCulture, $"{distance:0.00} {(distance < IdentityJudge.SameThreshold ? "same" : "diff")}");

    public static (RgbImage Sheet, List<ComparedModel> Models) Compare(AssetPaths assets, RgbImage source, string sourceName, RgbImage target, string targetName,
        IReadOnlyList<string> models, SwapOptions options, int panelHeight = 320)
    {
        var compared = new List<ComparedModel> { new(SwapJudging.CopyTarget, 0, double.NaN, target) };
        (float X1, float Y1, float X2, float Y2)? box = null;
        foreach (var model in models)
        {
            using var pipeline = new FaceSwapPipeline(assets, model, options with { Selection = FaceSelection.Largest, AllFaces = false });
            var embedding = pipeline.EmbedSource(source, sourceName);
            var faces = pipeline.Faces(target);
            if (faces.Count == 0) throw new SwapInputException($"{targetName}: no face found in the target image; nothing was written");
            box ??= (faces[0].Box.X1, faces[0].Box.Y1, faces[0].Box.X2, faces[0].Box.Y2);
            var (result, _) = pipeline.Swap(target, embedding);
            double cosine = IdentityEmbedder.Cosine(pipeline.Embed(result, faces[0].Five), embedding);
            compared.Add(new ComparedModel(Path.GetFileName(model), SwapBench.P50Ms(pipeline.Swapper, 30), cosine, result));
        }
        // The judge reads every output's face as the full swap path does: detected again, aligned on arcface_128.
        using var detector = new FaceDetector(assets.Detector, options.Ort);
        using var landmarks = new LandmarkDetector(assets.Landmarks, options.Ort);
        using var judge = IdentityJudge.Open(assets);
        var sourceFace = SwapJudging.TryLargestFaceCrop(source, detector, landmarks) ?? throw new SwapInputException($"{sourceName}: no face found in the source image; nothing was written");
        var targetFace = SwapJudging.TryLargestFaceCrop(target, detector, landmarks) ?? throw new SwapInputException($"{targetName}: no face found in the target image; nothing was written");
        var descriptors = Describe(judge, [sourceFace.Crop, targetFace.Crop]);
        compared = compared.Select(m => Judged(m, judge, detector, landmarks, descriptors[0], descriptors[1])).ToList();

        // The panel: the face box doubled, square, clamped to the image.
        static (int X, int Y, int Side) Around((float X1, float Y1, float X2, float Y2) b)
        {
            float side = Math.Max(b.X2 - b.X1, b.Y2 - b.Y1) * 2f, cx = (b.X1 + b.X2) / 2, cy = (b.Y1 + b.Y2) / 2;
            return ((int)Math.Max(0, cx - side / 2), (int)Math.Max(0, cy - side / 2), (int)side);
        }
        RgbImage Panel(RgbImage image, (int X, int Y, int Side) at, IReadOnlyList<string> caption)
        {
            var crop = image.Crop(at.X, at.Y, at.Side, at.Side);
            int width = Math.Max(1, (int)Math.Round((double)crop.Width / crop.Height * panelHeight));
            return TextLabel.StackVertical(crop.Resize(width, panelHeight), TextLabel.Strip(width, caption));
        }
        var targetAt = Around(box!.Value);
        var sourceBox = detector.Detect(source).MaxBy(f => f.Area)!;
        var panels = new List<RgbImage>
        {
            Panel(target, targetAt, ["target", Path.GetFileName(targetName)]),
            Panel(source, Around((sourceBox.X1, sourceBox.Y1, sourceBox.X2, sourceBox.Y2)), ["source", Path.GetFileName(sourceName)]),
        };
        panels.AddRange(compared.Select(m => Panel(m.Result, targetAt,
        [
            m.Name,
            m.Name == SwapJudging.CopyTarget ? "baseline: the target unchanged" : string.Create(CultureInfo.InvariantCulture, $"swapper p50 {m.P50Ms:0.0} ms · id cos {m.IdentityCosine:0.000}"),
            $"judge: source {Same(m.JudgeSourceDistance)} · target {Same(m.JudgeTargetDistance)}",
            $"verdict: {m.Verdict}",
        ])));
        return (TextLabel.SideBySide([.. panels]), compared);
    }

}
