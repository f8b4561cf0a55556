using FaceFusion.Compress.Assets;
using FaceFusion.Compress.Imaging;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Judging;

/// <summary>
/// The independent identity judge: face-api.js's FaceRecognitionNet (@vladmandic/face-api 1.7.15), a dlib-style
/// ResNet giving 128-d descriptors from 150×150 faces; two faces are the same person when the Euclidean distance of
/// their descriptors is below <see cref="SameThreshold"/>. It scores swaps and is never part of a training loss
/// (training configs and identity networks that name its files are refused: <see cref="JudgeFiles"/>).
/// Preprocessing is face-api's own: 8-bit RGB as floats 0..255, zero-padded to a square (centred), resized to
/// 150×150 by TF's asymmetric bilinear rule (<see cref="AsymmetricResize"/>), then (x − <see cref="MeanRgb"/>)/255.
/// The judge owns its network: dispose the judge to free it. Not thread-safe: one caller at a time.
/// </summary>
public sealed class IdentityJudge : IDisposable
{
    /// <summary>face-api.js's and dlib's same-person rule: distance below 0.6.</summary>
    public const double SameThreshold = 0.6;
    /// <summary>Side of the network's input.</summary>
    public const int InputSize = 150;
    /// <summary>Per-channel mean subtracted (R, G, B, on 0..255) before dividing by 255.</summary>
    public static readonly float[] MeanRgb = [122.782f, 117.001f, 104.298f];
    /// <summary>
    /// Where face-api's own (dlib-style) alignment puts the face inside a 256-px arcface_128 crop: the square
    /// (x, y, side) = (30, 48, 192), scaled by R/256 for other crop sizes (the median of its aligned rect on the
    /// bundled crops). On the whole crop the 0.6 rule does not separate the bundled people; on this box it does.
    /// </summary>
    public static readonly (int X, int Y, int Side) DlibBoxOn256 = (30, 48, 192);

    private const int BatchSize = 16;
    private readonly FaceRecognitionNet _network;
    private readonly Tensor _mean;

    private IdentityJudge(FaceRecognitionNet network)
    {
        _network = network;
        _mean = tensor(MeanRgb).view(1, 3, 1, 1);
    }

    /// <summary>Opens the judge from the asset cache (<see cref="AssetPaths.JudgeManifest"/>, <see cref="AssetPaths.JudgeWeights"/>).</summary>
    public static IdentityJudge Open(AssetPaths assets) => Open(assets.JudgeManifest, assets.JudgeWeights);

    /// <summary>
    /// Opens the judge from its manifest and weights file, after checking both against the SHA-256 of the face-api
    /// 1.7.15 release. A missing file or a checksum mismatch throws with the file named and `make setup` as the fix.
    /// </summary>
    public static IdentityJudge Open(string manifestPath, string weightsPath)
    {
        Verify(manifestPath, JudgeFiles.ManifestSha256);
        Verify(weightsPath, JudgeFiles.WeightsSha256);
        if (!string.Equals(Path.GetFullPath(Path.GetDirectoryName(manifestPath)!), Path.GetFullPath(Path.GetDirectoryName(weightsPath)!), StringComparison.Ordinal)
            || Path.GetFileName(weightsPath) != "face_recognition_model.bin")
            throw new ArgumentException($"{weightsPath}: the manifest {manifestPath} reads its shard from its own folder as face_recognition_model.bin");
        var network = new FaceRecognitionNet();
        try
        {
            network.Load(TfjsWeights.Read(manifestPath), manifestPath);
            network.eval();
            return new IdentityJudge(network);
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    private static void Verify(string path, string expected)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path}: identity judge file not found; run `make setup` (or set FFC_CACHE to the asset cache)", path);
        string actual = JudgeFiles.Sha256(path);
        if (actual != expected)
            throw new InvalidDataException($"{path}: SHA-256 {actual} is not the judge's {expected} (corrupt or replaced; `make setup` refetches it)");
    }

    /// <summary>
    /// Descriptors of face regions given as they are (any size; face-api's own aligned boxes): each is zero-padded to a
    /// square, resized to 150 and normalised. Returns one 128-float array per region, in order.
    /// </summary>
    public float[][] Describe(IReadOnlyList<RgbImage> regions)
    {
        var result = new float[regions.Count][];
        for (int start = 0; start < regions.Count; start += BatchSize)
        {
            using var scope = NewDisposeScope();
            int count = Math.Min(BatchSize, regions.Count - start);
            var batch = cat(Enumerable.Range(start, count).Select(i => Square150(regions[i])).ToArray(), 0);
            using var descriptors = DescribeResized(batch);
            var values = descriptors.data<float>().ToArray();
            for (int i = 0; i < count; i++) result[start + i] = values.AsSpan(i * 128, 128).ToArray();
        }
        return result;
    }

    /// <summary>
    /// Descriptors of swapper crops: <paramref name="crops"/> [N,3,R,R] RGB in [−1,1] on FaceFusion's arcface_128
    /// template. The box <see cref="DlibBoxOn256"/> scaled by R/256 is cut out and resized to 150 in one step, then
    /// normalised as in <see cref="Describe"/>. Returns a new [N,128] tensor without gradient; the caller disposes
    /// it (the input stays the caller's).
    /// </summary>
    public Tensor DescribeCrops(Tensor crops)
    {
        if (crops.dim() != 4 || crops.shape[1] != 3 || crops.shape[2] != crops.shape[3])
            throw new ArgumentException($"crops must be [N,3,R,R], got [{string.Join(",", crops.shape)}]");
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        int r = (int)crops.shape[3];
        double s = r / 256.0;
        var rows = AsymmetricResize.Matrix(r, InputSize, DlibBoxOn256.Y * s, DlibBoxOn256.Side * s);
        var columns = AsymmetricResize.Matrix(r, InputSize, DlibBoxOn256.X * s, DlibBoxOn256.Side * s);
        var pixels = crops.detach().to(float32).cpu().add(1).mul(127.5);
        var chunks = new List<Tensor>();
        for (long start = 0; start < crops.shape[0]; start += BatchSize)
        {
            var part = pixels.narrow(0, start, Math.Min(BatchSize, crops.shape[0] - start));
            chunks.Add(DescribeResized(AsymmetricResize.Resample(part, rows, columns)));
        }
        return cat(chunks, 0).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Descriptors of already resized input: [N,3,150,150] RGB floats 0..255 (the state after face-api's resize).
    /// Returns a new [N,128] tensor; the caller disposes it.
    /// </summary>
    public Tensor DescribeResized(Tensor pixels150)
    {
        if (pixels150.dim() != 4 || pixels150.shape[1] != 3 || pixels150.shape[2] != InputSize || pixels150.shape[3] != InputSize)
            throw new ArgumentException($"input must be [N,3,{InputSize},{InputSize}], got [{string.Join(",", pixels150.shape)}]");
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var normalised = pixels150.sub(_mean).div(255f);
        return _network.call(normalised).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// One region as face-api prepares it before the network: [1,3,150,150] floats 0..255, zero-padded to a square
    /// (round(d/2) after, the rest before, on the short side) and resized asymmetrically. The caller disposes it.
    /// </summary>
    public static Tensor Square150(RgbImage region)
    {
        using var scope = NewDisposeScope();
        int side = Math.Max(region.Width, region.Height);
        int diff = side - Math.Min(region.Width, region.Height);
        int after = (int)Math.Round(diff / 2.0, MidpointRounding.AwayFromZero), before = diff - after;
        int x0 = region.Width < side ? before : 0, y0 = region.Height < side ? before : 0;
        var hwc = tensor(region.Pixels, [region.Height, region.Width, 3]).to(float32);
        var chw = hwc.permute(2, 0, 1).unsqueeze(0);
        var square = diff == 0 ? chw : nn.functional.pad(chw,
            region.Width < side ? [x0, side - region.Width - x0, 0, 0] : [0, 0, y0, side - region.Height - y0]);
        return AsymmetricResize.Resize(square, InputSize, InputSize).MoveToOuterDisposeScope();
    }

    /// <summary>Euclidean distance between two descriptors (same person when below <see cref="SameThreshold"/>).</summary>
    public static double Distance(float[] a, float[] b)
    {
        if (a.Length != b.Length) throw new ArgumentException($"descriptor lengths differ: {a.Length} and {b.Length}");
        double sum = 0;
        for (int i = 0; i < a.Length; i++) { double d = a[i] - b[i]; sum += d * d; }
        return Math.Sqrt(sum);
    }

    /// <summary>Row-wise Euclidean distances of two [N,128] descriptor tensors, as doubles.</summary>
    public static double[] Distances(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        return (a - b).pow(2).sum(1).sqrt().to(float64).data<double>().ToArray();
    }

    /// <summary>Frees the network's weights.</summary>
    public void Dispose()
    {
        _network.Dispose();
        _mean.Dispose();
    }
}
