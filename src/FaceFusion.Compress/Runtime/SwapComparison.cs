using FaceFusion.Compress.Data;
using FaceFusion.Compress.Assets;
using FaceFusion.Compress.Imaging;
using FaceFusion.Compress.Reporting;

namespace FaceFusion.Compress.Runtime;

/// <summary>One model's result in a comparison: its swap, batch-1 swapper latency and identity cosine to the source.</summary>
public sealed record ComparedModel(string Name, double P50Ms, double IdentityCosine, RgbImage Result);

/// <summary>
/// `ffc swap --compare A.onnx B.onnx`: the same swap with two (or more) models, shown side by side as
/// target | A | B around the target's largest face, each captioned with its latency and identity cosine.
/// </summary>
public static class SwapComparison
{
    public static (RgbImage Sheet, List<ComparedModel> Models) Compare(AssetPaths assets, RgbImage source, string sourceName, RgbImage target, string targetName,
        IReadOnlyList<string> models, SwapOptions options, int panelHeight = 320)
    {
        var compared = new List<ComparedModel>();
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
        // The panel: the face box doubled, square, clamped to the image.
        var (x1, y1, x2, y2) = box!.Value;
        float side = Math.Max(x2 - x1, y2 - y1) * 2f, cx = (x1 + x2) / 2, cy = (y1 + y2) / 2;
        int px = (int)Math.Max(0, cx - side / 2), py = (int)Math.Max(0, cy - side / 2), ps = (int)side;
        RgbImage Panel(RgbImage image, IReadOnlyList<string> caption)
        {
            var crop = image.Crop(px, py, ps, ps);
            int width = Math.Max(1, (int)Math.Round((double)crop.Width / crop.Height * panelHeight));
            return TextLabel.StackVertical(crop.Resize(width, panelHeight), TextLabel.Strip(width, caption));
        }
        var panels = new List<RgbImage> { Panel(target, ["target", Path.GetFileName(targetName)]) };
        panels.AddRange(compared.Select(m => Panel(m.Result, [m.Name, $"swapper p50 {m.P50Ms:0.0} ms · id cos {m.IdentityCosine:0.000}"])));
        return (TextLabel.SideBySide([.. panels]), compared);
    }

}
