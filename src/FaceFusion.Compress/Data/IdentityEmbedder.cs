using FaceFusion.Compress.Imaging;
using FaceFusion.Compress.Runtime;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace FaceFusion.Compress.Data;

/// <summary>
/// Identity embeddings through ONNX Runtime over an ArcFace-style model (default `fr_feature.onnx`): a 112×112
/// RGB crop on the arcface_112_v2 template, normalised (x − 127)/128, gives 512 numbers, L2-normalised here.
/// Owns its session: dispose it.
/// </summary>
public sealed class IdentityEmbedder : IDisposable
{
    public const int CropSize = 112;
    public const float Mean = 127f, Std = 128f;

    /// <summary>The pixel normalisation an embedder expects: (x − mean)/std on the 0–255 scale.</summary>
    public static (float Mean, float Std) Normalization(string name) => name switch
    {
        "ffc" => (127f, 128f),                // the bundled fr_feature.onnx
        "insightface" => (127.5f, 127.5f),    // insightface ArcFace models, as FaceFusion feeds them
        _ => throw new ArgumentException($"embedder normalisation '{name}': use ffc ((x − 127)/128) or insightface ((x − 127.5)/127.5)"),
    };

    private readonly float _mean = Mean, _std = Std;
    private readonly InferenceSession _session;
    private readonly string _inputName;

    public string ModelPath { get; }

    /// <param name="modelPath">The embedder's ONNX file (loaded once; the session is disposed with this object).</param>
    /// <param name="settings">ONNX Runtime threads and options (defaults when null).</param>
    /// <param name="normalization">ffc (default, the bundled embedder) or insightface; see <see cref="Normalization"/>.</param>
    public IdentityEmbedder(string modelPath, OrtSettings? settings = null, string normalization = "ffc")
    {
        (_mean, _std) = Normalization(normalization);
        ModelPath = modelPath;
        _session = OrtSessions.Open(modelPath, settings);
        _inputName = _session.InputMetadata.Keys.First();
    }

    /// <summary>Aligns the face with its five points onto the 112-px template and embeds it.</summary>
    public float[] Embed(RgbImage image, IReadOnlyList<(double X, double Y)> fivePoints)
    {
        var transform = FaceTemplates.AlignmentTransform(fivePoints, FaceTemplates.Arcface112V2, CropSize);
        return EmbedCrop(image.WarpAffine(transform, CropSize, CropSize));
    }

    /// <summary>Embeds an already aligned 112×112 crop; returns a unit-length vector.</summary>
    public float[] EmbedCrop(RgbImage crop)
    {
        if (crop.Width != CropSize || crop.Height != CropSize)
            throw new ArgumentException($"identity crops must be {CropSize}x{CropSize}, got {crop.Width}x{crop.Height}");
        var input = new DenseTensor<float>([1, 3, CropSize, CropSize]);
        var span = input.Buffer.Span;
        int plane = CropSize * CropSize;
        for (int i = 0; i < plane; i++)
            for (int c = 0; c < 3; c++)
                span[c * plane + i] = (crop.Pixels[i * 3 + c] - _mean) / _std;
        using var results = _session.Run([NamedOnnxValue.CreateFromTensor(_inputName, input)]);
        return Normalize(results.First().AsTensor<float>().ToArray());
    }

    public static float[] Normalize(float[] v)
    {
        double n = Math.Sqrt(v.Sum(x => (double)x * x));
        if (n < 1e-12 || double.IsNaN(n)) throw new InvalidDataException("identity embedding has zero or invalid norm");
        return v.Select(x => (float)(x / n)).ToArray();
    }

    public static float Cosine(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++) { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
        return (float)(dot / Math.Sqrt(na * nb));
    }

    public void Dispose() => _session.Dispose();
}
