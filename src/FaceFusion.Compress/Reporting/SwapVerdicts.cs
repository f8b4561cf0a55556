using FaceFusion.Compress.Assets;
using FaceFusion.Compress.Data;
using FaceFusion.Compress.Imaging;
using FaceFusion.Compress.Judging;
using FaceFusion.Compress.Runtime;

namespace FaceFusion.Compress.Reporting;

/// <summary>Whose face the independent judge sees in one swap output.</summary>
public enum JudgedPerson { Source, Target, Neither }

/// <summary>
/// The judge's distances from one output face to the source's and the target's face. The output is called the
/// source's person when it is within <see cref="IdentityJudge.SameThreshold"/> of the source and nearer to it than to
/// the target; the target's person when it is within the threshold of the target otherwise.
/// </summary>
public readonly record struct SwapVerdict(double ToSource, double ToTarget)
{
    public JudgedPerson Person => SwapJudging.Verdict(ToSource, ToTarget) switch
    {
        "source" => JudgedPerson.Source,
        "target" => JudgedPerson.Target,
        _ => JudgedPerson.Neither,
    };
}

/// <summary>
/// Judges what `ffc swap` wrote, the way a user would look at it: the largest face of the source, of the target and
/// of the output, each detected and aligned again, described by the independent judge (never a training loss).
/// Owns its detector, landmark model and judge; dispose it.
/// </summary>
public sealed class SwapVerdictJudge : IDisposable
{
    private const int CropSize = 256;
    private readonly IdentityJudge _judge;
    private readonly FaceDetector _detector;
    private readonly LandmarkDetector _landmarks;

    public SwapVerdictJudge(AssetPaths assets, OrtSettings? ort = null)
    {
        _judge = IdentityJudge.Open(assets);
        _detector = new FaceDetector(assets.Detector, ort);
        _landmarks = new LandmarkDetector(assets.Landmarks, ort);
    }

    /// <summary>The judge's descriptor of the image's largest face, or null when no face is detected.</summary>
    public float[]? DescribeLargestFace(RgbImage image)
    {
        if (SwapJudging.TryLargestFaceCrop(image, _detector, _landmarks, CropSize) is not { } face) return null;
        using var crops = JudgeVerification.ToCropTensor([face.Crop]);
        using var descriptor = _judge.DescribeCrops(crops);
        return descriptor.data<float>().ToArray();
    }

    /// <summary>The verdict on <paramref name="output"/>, or null when it shows no face.</summary>
    public SwapVerdict? Judge(float[] source, float[] target, RgbImage output) =>
        DescribeLargestFace(output) is { } o ? new SwapVerdict(IdentityJudge.Distance(o, source), IdentityJudge.Distance(o, target)) : null;

    /// <summary>
    /// Verdicts on up to <paramref name="samples"/> frames spread evenly over a swapped video, each against the same
    /// frame of the input video. Frames where either video shows no face are left out.
    /// </summary>
    public List<SwapVerdict> JudgeVideo(float[] source, string inputVideo, string outputVideo, int samples)
    {
        if (samples < 1) throw new ArgumentOutOfRangeException(nameof(samples), samples, "at least one frame");
        int frames = VideoReader.Probe(outputVideo).FrameCount;
        int every = Math.Max(1, frames / samples);
        var verdicts = new List<SwapVerdict>();
        using var input = VideoReader.ReadFrames(inputVideo).GetEnumerator();
        foreach (var (index, frame) in VideoReader.ReadFrames(outputVideo))
        {
            if (!input.MoveNext() || verdicts.Count >= samples) break;
            if (index % every != 0) continue;
            if (DescribeLargestFace(input.Current.Frame) is { } target && Judge(source, target, frame) is { } verdict) verdicts.Add(verdict);
        }
        return verdicts;
    }

    public void Dispose()
    {
        _judge.Dispose();
        _detector.Dispose();
        _landmarks.Dispose();
    }
}
