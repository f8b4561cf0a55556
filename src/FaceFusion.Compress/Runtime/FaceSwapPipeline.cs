using System.Diagnostics;
using System.Globalization;
using FaceFusion.Compress.Assets;
using FaceFusion.Compress.Data;
using FaceFusion.Compress.Imaging;

namespace FaceFusion.Compress.Runtime;

/// <summary>Raised for swap inputs that cannot be used (no face, unreadable file); names the file and the cause.</summary>
public sealed class SwapInputException(string message) : Exception(message);

/// <summary>Which faces of the target are swapped.</summary>
public enum FaceSelection { Largest, All, Reference }

/// <summary>How the swapped crop is pasted back.</summary>
public enum BlendMode
{
    /// <summary>Alpha blend through the feathered box mask (combined with the model's mask).</summary>
    Feather,
    /// <summary>Seamless cloning: the crop's gradients, the target's colours at the border, then the feathered mask.</summary>
    Poisson,
}

/// <summary>Time spent per stage, summed over the frames a pipeline processed.</summary>
public sealed class SwapTimings
{
    public static readonly string[] Stages = ["detect", "landmarks", "select", "align", "swap", "color", "paste"];
    private readonly Dictionary<string, double> _ms = Stages.ToDictionary(s => s, _ => 0.0);
    public int Frames { get; set; }
    public int Faces { get; set; }
    public IReadOnlyDictionary<string, double> TotalMs => _ms;

    internal T Time<T>(string stage, Func<T> work)
    {
        var watch = Stopwatch.StartNew();
        var result = work();
        _ms[stage] += watch.Elapsed.TotalMilliseconds;
        return result;
    }

    internal void Time(string stage, Action work) => Time(stage, () => { work(); return 0; });

    /// <summary>Starts counting afresh (e.g. after warm-up frames).</summary>
    public void Reset()
    {
        foreach (var stage in Stages) _ms[stage] = 0;
        Frames = Faces = 0;
    }

    /// <summary>Milliseconds per frame of one stage.</summary>
    public double PerFrameMs(string stage) => _ms[stage] / Math.Max(1, Frames);
}

/// <summary>Options of `ffc swap`.</summary>
public sealed record SwapOptions
{
    /// <summary>Swap every detected face instead of the largest one (same as <see cref="Selection"/> = All).</summary>
    public bool AllFaces { get; init; }
    /// <summary>Which faces to swap; <see cref="FaceSelection.Reference"/> needs <see cref="ReferenceEmbedding"/>.</summary>
    public FaceSelection Selection { get; init; } = FaceSelection.Largest;
    /// <summary>Identity embedding of the reference face (FaceSelection.Reference).</summary>
    public float[]? ReferenceEmbedding { get; init; }
    /// <summary>Faces whose identity cosine to the reference is at least this are swapped.</summary>
    public double ReferenceThreshold { get; init; } = 0.35;
    public BlendMode Blend { get; init; } = BlendMode.Feather;
    /// <summary>The identity embedder for source faces (default: the bundled fr_feature.onnx); use the one the swapper was trained with.</summary>
    public string? EmbedderPath { get; init; }
    /// <summary>Its pixel normalisation: ffc or insightface.</summary>
    public string EmbedderNormalization { get; init; } = "ffc";
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
    private SwapOptions _options;

    public FaceSwapPipeline(AssetPaths assets, string swapperPath, SwapOptions? options = null)
    {
        _options = options ?? new SwapOptions();
        _swapper = new OrtSwapper(swapperPath, _options.Ort);
        _detector = new FaceDetector(assets.Detector, _options.Ort);
        _landmarks = new LandmarkDetector(assets.Landmarks, _options.Ort);
        _embedder = new IdentityEmbedder(_options.EmbedderPath ?? assets.IdentityEmbedder, _options.Ort, _options.EmbedderNormalization);
    }

    public OrtSwapper Swapper => _swapper;

    /// <summary>
    /// A warning when the swapper was trained on another embedder than the one this pipeline embeds sources with
    /// (from the model's `embedder` metadata), else null.
    /// </summary>
    public string? EmbedderMismatch
    {
        get
        {
            if (!_swapper.Metadata.TryGetValue("embedder", out var trained)) return null;
            var used = Path.GetFileName(_embedder.ModelPath);
            return trained.StartsWith(used, StringComparison.Ordinal) ? null
                : $"{_swapper.Path} was trained on embeddings of {trained}, but sources are embedded with {used}: identities will not transfer (give --embedder)";
        }
    }

    /// <summary>Sets the reference face for <see cref="FaceSelection.Reference"/>: the embedding of the largest face of <paramref name="image"/>.</summary>
    public void SetReference(RgbImage image, string name) => _options = _options with { ReferenceEmbedding = EmbedSource(image, name) };

    /// <summary>Per-stage time over everything this pipeline swapped.</summary>
    public SwapTimings Timings { get; } = new();

    /// <summary>The identity embedding of the largest face of the source image.</summary>
    public float[] EmbedSource(RgbImage image, string name)
    {
        var faces = _detector.Detect(image);
        if (faces.Count == 0) throw new SwapInputException($"{name}: no face found in the source image");
        var face = faces.MaxBy(f => f.Area);
        return _embedder.Embed(image, FaceTemplates.FivePointsFrom68(_landmarks.Detect(image, face)));
    }

    /// <summary>The identity embedding of the face at <paramref name="five"/> (e.g. a swapped result, for its identity cosine).</summary>
    public float[] Embed(RgbImage image, IReadOnlyList<(double X, double Y)> five) => _embedder.Embed(image, five);

    /// <summary>The faces of an image with their five alignment points, largest first.</summary>
    public List<(FaceBox Box, IReadOnlyList<(double X, double Y)> Five)> Faces(RgbImage image) =>
        _detector.Detect(image).OrderByDescending(f => f.Area).Select(f => (f, (IReadOnlyList<(double X, double Y)>)FaceTemplates.FivePointsFrom68(_landmarks.Detect(image, f)))).ToList();

    /// <summary>Swaps the target's faces chosen by the options; returns the new image and how many faces were swapped.</summary>
    public (RgbImage Image, int Faces) Swap(RgbImage target, float[] source)
    {
        Timings.Frames++;
        var faces = Timings.Time("detect", () => _detector.Detect(target));
        if (faces.Count == 0) return (target, 0);
        var selection = _options.AllFaces ? FaceSelection.All : _options.Selection;
        var candidates = selection == FaceSelection.Largest ? [faces.MaxBy(f => f.Area)] : faces.ToList();
        var located = candidates.Select(f => (Face: f, Five: Timings.Time("landmarks", () => FaceTemplates.FivePointsFrom68(_landmarks.Detect(target, f))))).ToList();
        if (selection == FaceSelection.Reference)
        {
            var reference = _options.ReferenceEmbedding ?? throw new InvalidOperationException("reference selection needs a reference embedding");
            located = located.Where(l => IdentityEmbedder.Cosine(Timings.Time("select", () => _embedder.Embed(target, l.Five)), reference) >= _options.ReferenceThreshold).ToList();
        }
        if (located.Count == 0) return (target, 0);
        var result = new RgbImage(target.Width, target.Height, (byte[])target.Pixels.Clone());
        foreach (var (_, five) in located) SwapOne(result, target, five, source);
        Timings.Faces += located.Count;
        return (result, located.Count);
    }


    private void SwapOne(RgbImage canvas, RgbImage original, IReadOnlyList<(double X, double Y)> five, float[] source)
    {
        int r = _swapper.Resolution;
        var toCrop = FaceTemplates.AlignmentTransform(five, FaceTemplates.Arcface128, r);
        var (crop, input) = Timings.Time("align", () =>
        {
            var warped = original.WarpAffine(toCrop, r, r);
            var values = new float[3 * r * r];
            for (int i = 0; i < r * r; i++)
                for (int c = 0; c < 3; c++) values[c * r * r + i] = warped.Pixels[i * 3 + c] / 127.5f - 1f;
            return (warped, values);
        });
        var (output, modelMask) = Timings.Time("swap", () => _swapper.Run(input, source, 1));
        var swapped = new RgbImage(r, r);
        for (int i = 0; i < r * r; i++)
            for (int c = 0; c < 3; c++)
                swapped.Pixels[i * 3 + c] = (byte)Math.Clamp(MathF.Round((output[c * r * r + i] + 1f) * 127.5f), 0, 255);

        var mask = BoxMask(r);
        if (modelMask is not null) for (int i = 0; i < mask.Length; i++) mask[i] = Math.Min(mask[i], modelMask[i]);
        if (_options.ColorCorrection) swapped = Timings.Time("color", () => ColorTransfer.MatchLab(swapped, crop, mask));
        Timings.Time("paste", () => Paste(canvas, original, swapped, mask, toCrop, r));
    }

    /// <summary>
    /// Paste back: every canvas pixel whose crop position falls inside the crop blends by the mask; with Poisson
    /// blending the crop is first corrected to meet the target seamlessly over the mask's support.
    /// </summary>
    private void Paste(RgbImage canvas, RgbImage original, RgbImage swapped, float[] mask, Affine2D toCrop, int r)
    {
        var corners = new[] { (0.0, 0.0), (r, 0.0), (0.0, r), (r, r) }.Select(p => toCrop.Inverse().Apply(p.Item1, p.Item2)).ToList();
        int x0 = Math.Max(0, (int)corners.Min(p => p.X)), x1 = Math.Min(canvas.Width - 1, (int)Math.Ceiling(corners.Max(p => p.X)));
        int y0 = Math.Max(0, (int)corners.Min(p => p.Y)), y1 = Math.Min(canvas.Height - 1, (int)Math.Ceiling(corners.Max(p => p.Y)));
        int w = x1 - x0 + 1, h = y1 - y0 + 1;
        if (w <= 0 || h <= 0) return;
        // The region in canvas coordinates: the warped crop, its blend weight, and the target behind it.
        var pasted = new float[w * h * 3];
        var background = new float[w * h * 3];
        var weight = new float[w * h];
        var valid = new bool[w * h];
        Parallel.For(0, h, j =>
        {
            for (int i = 0; i < w; i++)
            {
                int k = j * w + i, o = ((y0 + j) * canvas.Width + x0 + i) * 3;
                for (int c = 0; c < 3; c++) background[k * 3 + c] = original.Pixels[o + c];
                var (u, v) = toCrop.Apply(x0 + i, y0 + j);
                if (u < 0 || v < 0 || u > r - 1 || v > r - 1) continue;
                valid[k] = true;
                weight[k] = Bilinear(mask, r, (float)u, (float)v);
                for (int c = 0; c < 3; c++) pasted[k * 3 + c] = swapped.Sample((float)u, (float)v, c);
            }
        });
        if (_options.Blend == BlendMode.Poisson)
            PoissonBlend.Blend(pasted, background, weight.Select(m => m > 0).ToArray(), valid, w, h);
        Parallel.For(0, h, j =>
        {
            for (int i = 0; i < w; i++)
            {
                int k = j * w + i;
                float m = weight[k];
                if (m <= 0) continue;
                int o = ((y0 + j) * canvas.Width + x0 + i) * 3;
                for (int c = 0; c < 3; c++)
                    canvas.Pixels[o + c] = (byte)Math.Clamp(MathF.Round(m * pasted[k * 3 + c] + (1 - m) * background[k * 3 + c]), 0, 255);
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
        // H.264 at default quality: a few percent of the raw frames, generously.
        DiskSpace.Require(output, (long)total * width * height * 3 / 20, $"the swapped video ({total} frames)");
        var partial = AtomicFile.CreateTemp(output);
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
            catch
            {
                // A decode or swap failure: the half-encoded temporary file is ours to remove.
                try { stdin.Close(); } catch (IOException) { }
                ffmpeg.WaitForExit();
                AtomicFile.Discard(partial);
                throw;
            }
            finally
            {
                try { stdin.Close(); } catch (IOException) { }
                ffmpeg.WaitForExit();
            }
            if (ffmpeg.ExitCode != 0)
            {
                AtomicFile.Discard(partial);
                throw new SwapInputException($"{output}: ffmpeg could not encode the result ({errors.Result.Trim()})");
            }
        }
        if (swappedFrames == 0)
        {
            AtomicFile.Discard(partial);
            throw new SwapInputException($"{input}: no face found in any frame; nothing was written");
        }
        AtomicFile.Commit(partial, output);
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
