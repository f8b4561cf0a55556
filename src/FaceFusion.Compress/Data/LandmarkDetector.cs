using FaceFusion.Compress.Imaging;
using FaceFusion.Compress.Runtime;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace FaceFusion.Compress.Data;

/// <summary>
/// 68-point landmarks over `fr_landmark.onnx`: input [1,1,64,64] grey/256 of the face box, output [1,136] as
/// (x, y) pairs normalised to the box. Owns its session: dispose it.
/// </summary>
public sealed class LandmarkDetector : IDisposable
{
    public const int InputSize = 64;
    private readonly InferenceSession _session;

    public LandmarkDetector(string modelPath, OrtSettings? settings = null) => _session = OrtSessions.Open(modelPath, settings);

    /// <summary>The 68 points, in the image's pixel coordinates.</summary>
    public (double X, double Y)[] Detect(RgbImage image, FaceBox box)
    {
        // The model was trained on the detector's box, shifted to stay inside the image.
        float w = Math.Min(box.Width, image.Width - 1), h = Math.Min(box.Height, image.Height - 1);
        float x1 = Math.Clamp(box.X1, 0, image.Width - 1 - w), y1 = Math.Clamp(box.Y1, 0, image.Height - 1 - h);
        // Map the box onto 64×64 with pixel-centre alignment, sampling the full-resolution image.
        double scaleX = InputSize / (double)w, scaleY = InputSize / (double)h;
        var toInput = new Affine2D(scaleX, 0, -x1 * scaleX + 0.5 * scaleX - 0.5, 0, scaleY, -y1 * scaleY + 0.5 * scaleY - 0.5);
        var crop = image.WarpAffine(toInput, InputSize, InputSize);

        var input = new DenseTensor<float>([1, 1, InputSize, InputSize]);
        var span = input.Buffer.Span;
        var px = crop.Pixels;
        for (int i = 0; i < InputSize * InputSize; i++)
            span[i] = (0.299f * px[i * 3] + 0.587f * px[i * 3 + 1] + 0.114f * px[i * 3 + 2]) / 256f;

        using var results = _session.Run([NamedOnnxValue.CreateFromTensor("input", input)]);
        var output = results.First().AsTensor<float>().ToArray();
        if (output.Length != 136) throw new InvalidDataException($"landmark model returned {output.Length} values, expected 136");
        var points = new (double, double)[68];
        for (int p = 0; p < 68; p++) points[p] = (x1 + output[2 * p] * w, y1 + output[2 * p + 1] * h);
        return points;
    }

    public void Dispose() => _session.Dispose();
}
