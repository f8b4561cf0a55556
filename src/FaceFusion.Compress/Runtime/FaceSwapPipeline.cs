using System.Diagnostics;
using System.Globalization;
using FaceFusion.Compress.Assets;
using FaceFusion.Compress.Data;
using FaceFusion.Compress.Imaging;

namespace FaceFusion.Compress.Runtime;

/// <summary>Raised for swap inputs that cannot be used (no face, unreadable file); names the file and the cause.</summary>
public sealed class SwapInputException(string message) : Exception(message);

/// <summary>Options of `ffc swap`.</summary>
public sealed record SwapOptions
{
    /// <summary>Swap every detected face instead of the largest one.</summary>
    public bool AllFaces { get; init; }
    /// <summary>Match the swapped crop's colours to the target crop (mean/std in L*a*b*).</summary>
    public bool ColorCorrection { get; init; } = true;
    /// <summary>Feather width of the box mask as a fraction of the crop size.</summary>
    public double MaskBlur { get; init; } = 0.15;
    /// <summary>Box mask inset as a fraction of the crop size.</summary>
    public double MaskPadding { get; init; } = 0.02;
    public OrtSettings Ort { get; init; } = new();
}

/// <summary>
/// The FaceFusion-style swap pipeline around an ONNX swapper: detect (fr_detect) → 68 landmarks → five points →
/// similarity warp onto the swapper's arcface_128 template → swapper in ONNX Runtime (FaceFusion IO, mean 0.5 /
/// std 0.5) → colour correction → paste back through the inverse warp with a feathered box mask combined
/// (element-wise minimum) with the model's mask. Owns its sessions: dispose it.
/// </summary>
public sealed class FaceSwapPipeline : IDisposable
{
    private readonly FaceDetector _detector;
    private readonly LandmarkDetector _landmarks;
    private readonly IdentityEmbedder _embedder;
    private readonly OrtSwapper _swapper;
    private readonly SwapOptions _options;

    public FaceSwapPipeline(AssetPaths assets, string swapperPath, SwapOptions? options = null)
    {
        _options = options ?? new SwapOptions();
        _swapper = new OrtSwapper(swapperPath, _options.Ort);
        _detector = new FaceDetector(assets.Detector, _options.Ort);
        _landmarks = new LandmarkDetector(assets.Landmarks, _options.Ort);
        _embedder = new IdentityEmbedder(assets.IdentityEmbedder, _options.Ort);
    }

    public OrtSwapper Swapper => _swapper;

    /// <summary>The identity embedding of the largest face of the source image.</summary>
    public float[] EmbedSource(RgbImage image, string name)
    {
        var faces = _detector.Detect(image);
        if (faces.Count == 0) throw new SwapInputException($"{name}: no face found in the source image");
        var face = faces.MaxBy(f => f.Area);
        return _embedder.Embed(image, FaceTemplates.FivePointsFrom68(_landmarks.Detect(image, face)));
    }

    /// <summary>Swaps the target's largest (or every) face; returns the new image and how many faces were swapped.</summary>
    public (RgbImage Image, int Faces) Swap(RgbImage target, float[] source)
    {
        var faces = _detector.Detect(target);
        if (faces.Count == 0) return (target, 0);
        var chosen = _options.AllFaces ? faces.ToList() : [faces.MaxBy(f => f.Area)];
        var result = new RgbImage(target.Width, target.Height, (byte[])target.Pixels.Clone());
        foreach (var face in chosen) SwapOne(result, target, face, source);
        return (result, chosen.Count);
    }

    private void SwapOne(RgbImage canvas, RgbImage original, FaceBox face, float[] source)
    {
        int r = _swapper.Resolution;
        var five = FaceTemplates.FivePointsFrom68(_landmarks.Detect(original, face));
        var toCrop = FaceTemplates.AlignmentTransform(five, FaceTemplates.Arcface128, r);
        var crop = original.WarpAffine(toCrop, r, r);
        var input = new float[3 * r * r];
        for (int i = 0; i < r * r; i++)
            for (int c = 0; c < 3; c++) input[c * r * r + i] = crop.Pixels[i * 3 + c] / 127.5f - 1f;
        var (output, modelMask) = _swapper.Run(input, source, 1);
        var swapped = new RgbImage(r, r);
        for (int i = 0; i < r * r; i++)
            for (int c = 0; c < 3; c++)
                swapped.Pixels[i * 3 + c] = (byte)Math.Clamp(MathF.Round((output[c * r * r + i] + 1f) * 127.5f), 0, 255);

        var mask = BoxMask(r);
        if (modelMask is not null) for (int i = 0; i < mask.Length; i++) mask[i] = Math.Min(mask[i], modelMask[i]);
        if (_options.ColorCorrection) swapped = ColorTransfer.MatchLab(swapped, crop, mask);

        // Paste back: every canvas pixel whose crop position falls inside the crop blends by the mask.
        var corners = new[] { (0.0, 0.0), (r, 0.0), (0.0, r), (r, r) }.Select(p => toCrop.Inverse().Apply(p.Item1, p.Item2)).ToList();
        int x0 = Math.Max(0, (int)corners.Min(p => p.X)), x1 = Math.Min(canvas.Width - 1, (int)Math.Ceiling(corners.Max(p => p.X)));
        int y0 = Math.Max(0, (int)corners.Min(p => p.Y)), y1 = Math.Min(canvas.Height - 1, (int)Math.Ceiling(corners.Max(p => p.Y)));
        Parallel.For(y0, y1 + 1, y =>
        {
            for (int x = x0; x <= x1; x++)
            {
                var (u, v) = toCrop.Apply(x, y);
                if (u < 0 || v < 0 || u > r - 1 || v > r - 1) continue;
                float m = Bilinear(mask, r, (float)u, (float)v);
                if (m <= 0) continue;
                int o = (y * canvas.Width + x) * 3;
                for (int c = 0; c < 3; c++)
                {
                    float s = swapped.Sample((float)u, (float)v, c);
                    canvas.Pixels[o + c] = (byte)Math.Clamp(MathF.Round(m * s + (1 - m) * original.Pixels[o + c]), 0, 255);
                }
            }
        });
    }

    /// <summary>A box of ones inset by the padding, feathered linearly to zero over the blur width at each edge.</summary>
    private float[] BoxMask(int r)
    {
        var mask = new float[r * r];
        double pad = _options.MaskPadding * r, blur = Math.Max(1, _options.MaskBlur * r);
        for (int y = 0; y < r; y++)
            for (int x = 0; x < r; x++)
            {
                double edge = Math.Min(Math.Min(x + 0.5, r - x - 0.5), Math.Min(y + 0.5, r - y - 0.5)) - pad;
                mask[y * r + x] = (float)Math.Clamp(edge / blur, 0, 1);
            }
        return mask;
    }

    private static float Bilinear(float[] map, int r, float u, float v)
    {
        int x0 = (int)MathF.Floor(u), y0 = (int)MathF.Floor(v);
        int x1 = Math.Min(r - 1, x0 + 1), y1 = Math.Min(r - 1, y0 + 1);
        float fx = u - x0, fy = v - y0;
        return (map[y0 * r + x0] * (1 - fx) + map[y0 * r + x1] * fx) * (1 - fy) + (map[y1 * r + x0] * (1 - fx) + map[y1 * r + x1] * fx) * fy;
    }

    /// <summary>
    /// Swaps every frame of a video into <paramref name="output"/> (H.264 MP4, the original audio kept when there is
    /// one), written to a temporary file and renamed. Frames without a face pass through unchanged.
    /// </summary>
    public int SwapVideo(string input, string output, float[] source, IReadOnlyDictionary<string, string> metadata, IProgress<(int Frame, int Total)>? progress = null)
    {
        var (width, height, fps, total) = VideoReader.Probe(input);
        var partial = output + ".partial";
        var psi = new ProcessStartInfo("ffmpeg") { RedirectStandardInput = true, RedirectStandardError = true, UseShellExecute = false };
        var args = new List<string> { "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", $"{width}x{height}", "-r", fps.ToString("0.###", CultureInfo.InvariantCulture),
            "-i", "pipe:0", "-i", input, "-map", "0:v", "-map", "1:a?", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "copy", "-shortest" };
        foreach (var (k, v) in metadata) { args.Add("-metadata"); args.Add($"{k}={v}"); }
        args.AddRange(["-f", "mp4", partial]);
        foreach (var a in args) psi.ArgumentList.Add(a);
        int swappedFrames = 0, frames = 0;
        using (var ffmpeg = Process.Start(psi) ?? throw new SwapInputException($"{output}: cannot start ffmpeg"))
        {
            var errors = ffmpeg.StandardError.ReadToEndAsync();
            var stdin = ffmpeg.StandardInput.BaseStream;
            try
            {
                foreach (var (_, frame) in VideoReader.ReadFrames(input))
                {
                    var (image, faces) = Swap(frame, source);
                    if (faces > 0) swappedFrames++;
                    stdin.Write(image.Pixels);
                    progress?.Report((++frames, total));
                }
            }
            finally
            {
                stdin.Close();
                ffmpeg.WaitForExit();
            }
            if (ffmpeg.ExitCode != 0)
            {
                File.Delete(partial);
                throw new SwapInputException($"{output}: ffmpeg could not encode the result ({errors.Result.Trim()})");
            }
        }
        if (swappedFrames == 0)
        {
            File.Delete(partial);
            throw new SwapInputException($"{input}: no face found in any frame; nothing was written");
        }
        File.Move(partial, output, overwrite: true);
        return swappedFrames;
    }

    public void Dispose()
    {
        _swapper.Dispose();
        _detector.Dispose();
        _landmarks.Dispose();
        _embedder.Dispose();
    }
}
