using FaceFusion.Compress.Imaging;
using FaceFusion.Compress.Runtime;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace FaceFusion.Compress.Data;

/// <summary>An axis-aligned face box in image pixels with the detector's confidence.</summary>
public readonly record struct FaceBox(float X1, float Y1, float X2, float Y2, float Score)
{
    public float Width => X2 - X1;
    public float Height => Y2 - Y1;
    public float Area => Math.Max(0, Width) * Math.Max(0, Height);

    public float IoU(FaceBox other)
    {
        float ix = Math.Max(0, Math.Min(X2, other.X2) - Math.Max(X1, other.X1));
        float iy = Math.Max(0, Math.Min(Y2, other.Y2) - Math.Max(Y1, other.Y1));
        float inter = ix * iy;
        return inter <= 0 ? 0 : inter / (Area + other.Area - inter);
    }
}

/// <summary>
/// Face detector over `fr_detect.onnx` (an anchor-based detector whose graph already decodes its boxes):
/// input [1,3,240,320] RGB (x−127)/128, outputs `scores` [1,K,2] (column 1 = face) and `boxes` [1,K,4] as
/// corner coordinates normalised to the input. Owns its ONNX Runtime session: dispose it.
/// </summary>
public sealed class FaceDetector : IDisposable
{
    public const int InputWidth = 320, InputHeight = 240;
    private readonly InferenceSession _session;

    public float ScoreThreshold { get; init; } = 0.65f;
    public float NmsIoU { get; init; } = 0.4f;
    /// <summary>Faces whose shorter side is below this many pixels of the original image are dropped.</summary>
    public float MinFaceSize { get; init; } = 20f;

    public FaceDetector(string modelPath, OrtSettings? settings = null) => _session = OrtSessions.Open(modelPath, settings);

    /// <summary>Detects faces, highest score first.</summary>
    public IReadOnlyList<FaceBox> Detect(RgbImage image)
    {
        var resized = image.Width == InputWidth && image.Height == InputHeight ? image : image.Resize(InputWidth, InputHeight);
        var input = new DenseTensor<float>([1, 3, InputHeight, InputWidth]);
        var span = input.Buffer.Span;
        int plane = InputWidth * InputHeight;
        var px = resized.Pixels;
        for (int i = 0; i < plane; i++)
            for (int c = 0; c < 3; c++)
                span[c * plane + i] = (px[i * 3 + c] - 127f) / 128f;

        using var results = _session.Run([NamedOnnxValue.CreateFromTensor("input", input)]);
        var scores = results.First(r => r.Name == "scores").AsTensor<float>();
        var boxes = results.First(r => r.Name == "boxes").AsTensor<float>();
        int count = scores.Dimensions[1];
        float sx = image.Width, sy = image.Height;
        var candidates = new List<FaceBox>();
        for (int k = 0; k < count; k++)
        {
            float s = scores[0, k, 1];
            if (s < ScoreThreshold) continue;
            var box = new FaceBox(
                Math.Clamp(boxes[0, k, 0], 0, 1) * sx, Math.Clamp(boxes[0, k, 1], 0, 1) * sy,
                Math.Clamp(boxes[0, k, 2], 0, 1) * sx, Math.Clamp(boxes[0, k, 3], 0, 1) * sy, s);
            if (Math.Min(box.Width, box.Height) >= MinFaceSize) candidates.Add(box);
        }
        return NonMaximumSuppression(candidates, NmsIoU);
    }

    /// <summary>Greedy NMS: keeps the best box, drops those overlapping it by IoU ≥ <paramref name="iou"/>.</summary>
    public static List<FaceBox> NonMaximumSuppression(IEnumerable<FaceBox> boxes, float iou)
    {
        var kept = new List<FaceBox>();
        foreach (var box in boxes.OrderByDescending(b => b.Score))
            if (kept.All(k => k.IoU(box) < iou)) kept.Add(box);
        return kept;
    }

    public void Dispose() => _session.Dispose();
}
