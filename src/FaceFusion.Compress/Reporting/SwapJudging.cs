using System.Globalization;
using FaceFusion.Compress.Assets;
using FaceFusion.Compress.Data;
using FaceFusion.Compress.Imaging;
using FaceFusion.Compress.Judging;
using FaceFusion.Compress.Runtime;
using FaceFusion.Compress.Training;
using static TorchSharp.torch;
using Tensor = TorchSharp.torch.Tensor;

namespace FaceFusion.Compress.Reporting;

/// <summary>
/// One row of `judge.csv`: swap metrics that copying the target cannot fake, for one model (or the `copy-target`
/// baseline) on one pair set, measured on the crop or through the whole swap path. Column names are an interface:
/// only ever extend them.
/// </summary>
[CsvHelper.CsvRecord]
public sealed partial class SwapJudgeRow
{
    [CsvHelper.CsvColumn("model")] public string Model { get; set; } = "";
    /// <summary>`held_in` (the training identities' `test` frames, both directions) or `unseen` (still-photo identities as sources).</summary>
    [CsvHelper.CsvColumn("pair_set")] public string PairSet { get; set; } = "";
    /// <summary>`crop` (the swapper's output crop) or `full_frame` (pasted back, detected again, aligned).</summary>
    [CsvHelper.CsvColumn("path")] public string Path { get; set; } = "";
    [CsvHelper.CsvColumn("pairs")] public int Pairs { get; set; }
    /// <summary>Share of swaps the judge calls the source's person: distance to the source below 0.6 and below the distance to the target.</summary>
    [CsvHelper.CsvColumn("judge_source_rate")] public double JudgeSourceRate { get; set; }
    /// <summary>Share the judge calls the target's person: distance to the target below 0.6 and not above the distance to the source.</summary>
    [CsvHelper.CsvColumn("judge_target_rate")] public double JudgeTargetRate { get; set; }
    /// <summary>Mean judge distance of the output to the source face.</summary>
    [CsvHelper.CsvColumn("judge_source_dist")] public double JudgeSourceDist { get; set; }
    /// <summary>Mean judge distance of the output to the target face.</summary>
    [CsvHelper.CsvColumn("judge_target_dist")] public double JudgeTargetDist { get; set; }
    /// <summary>Mean 68-point landmark distance, output vs target, over the target's outer-eye-corner distance.</summary>
    [CsvHelper.CsvColumn("landmark_nme")] public double LandmarkNme { get; set; }
    /// <summary>Mean absolute change of the face region (grey levels 0–255) when the source is another identity's; empty on `full_frame`.</summary>
    [CsvHelper.CsvColumn("source_sensitivity")] public double? SourceSensitivity { get; set; }
    /// <summary>Laplacian variance of the output's face region over the target's (stripes, checkerboards); empty on `full_frame`.</summary>
    [CsvHelper.CsvColumn("hf_ratio")] public double? HfRatio { get; set; }
    /// <summary>yes/no: judge_source_rate more than 0.1 above the copy-target baseline's on the same pair set and path ("does not swap" otherwise).</summary>
    [CsvHelper.CsvColumn("swaps")] public string Swaps { get; set; } = "";
    [CsvHelper.CsvColumn("split")] public string Split { get; set; } = "";
    [CsvHelper.CsvColumn("cpu")] public string Cpu { get; set; } = "";
}

/// <summary>(target, source, alternative source) face indices of one pair set, into a <see cref="FaceSwapData"/>.</summary>
public sealed record JudgePairSet(string Name, int[] Targets, int[] Sources, int[] AlternativeSources)
{
    public int Count => Targets.Length;

    /// <summary><paramref name="count"/> pairs evenly spaced over the set (the full-frame subset: both directions of held-in pairs).</summary>
    public JudgePairSet Subset(int count)
    {
        int n = Math.Min(count, Count);
        var at = Enumerable.Range(0, n).Select(i => (int)((long)i * Count / n)).ToArray();
        return this with { Targets = at.Select(i => Targets[i]).ToArray(), Sources = at.Select(i => Sources[i]).ToArray(), AlternativeSources = at.Select(i => AlternativeSources[i]).ToArray() };
    }
}

/// <summary>
/// Swap metrics that cannot be gamed by copying the target or by fooling the training recogniser (issue 21): the
/// independent judge's verdicts, landmark agreement with the target, sensitivity to the source, and high-frequency
/// energy. The building blocks are public and tested on constructed cases; <see cref="Measure"/> runs them on a pair set.
/// </summary>
public static class SwapJudging
{
    public const string HeldIn = "held_in", Unseen = "unseen", CopyTarget = "copy-target";
    public const string CropPath = "crop", FullFramePath = "full_frame";
    /// <summary>How close to copy-target a model's judge_source_rate may be before it is flagged "does not swap".</summary>
    public const double SwapMargin = 0.1;

    /// <summary>
    /// The judge's verdict per pair: a source hit when the distance to the source is below the threshold and below
    /// the distance to the target; a target hit when the distance to the target is below the threshold and not above
    /// the distance to the source. Returns the two shares.
    /// </summary>
    public static (double SourceRate, double TargetRate) Verdicts(IReadOnlyList<double> toSource, IReadOnlyList<double> toTarget)
    {
        if (toSource.Count != toTarget.Count || toSource.Count == 0) throw new ArgumentException("need the same, non-zero number of source and target distances");
        int source = 0, target = 0;
        for (int i = 0; i < toSource.Count; i++)
        {
            if (toSource[i] < IdentityJudge.SameThreshold && toSource[i] < toTarget[i]) source++;
            else if (toTarget[i] < IdentityJudge.SameThreshold && toTarget[i] <= toSource[i]) target++;
        }
        return ((double)source / toSource.Count, (double)target / toSource.Count);
    }

    /// <summary>
    /// Mean distance of the 68 points over the inter-ocular distance of the target (outer eye corners, points 36 and
    /// 45): 0 when the output keeps the target's pose and expression exactly.
    /// </summary>
    public static double LandmarkNme(IReadOnlyList<(double X, double Y)> output, IReadOnlyList<(double X, double Y)> target)
    {
        if (output.Count != 68 || target.Count != 68) throw new ArgumentException($"expected 68 landmarks each, got {output.Count} and {target.Count}");
        double interOcular = Math.Sqrt(Math.Pow(target[36].X - target[45].X, 2) + Math.Pow(target[36].Y - target[45].Y, 2));
        if (interOcular < 1e-6) throw new ArgumentException("target eye corners coincide: no inter-ocular distance");
        double sum = 0;
        for (int i = 0; i < 68; i++) sum += Math.Sqrt(Math.Pow(output[i].X - target[i].X, 2) + Math.Pow(output[i].Y - target[i].Y, 2));
        return sum / 68 / interOcular;
    }

    /// <summary>
    /// Per image: the mean absolute difference of <paramref name="a"/> and <paramref name="b"/> ([N,3,R,R] in [−1,1])
    /// over the pixels of <paramref name="mask"/> ([N,1,R,R], 1 inside) and the three channels, in grey levels 0–255.
    /// </summary>
    public static double[] MeanAbsChange(Tensor a, Tensor b, Tensor mask)
    {
        using var scope = NewDisposeScope();
        var diff = a.sub(b).abs().mul(127.5).mul(mask).sum([1L, 2L, 3L]);
        var area = mask.sum([1L, 2L, 3L]).mul(3).clamp_min(1);
        return diff.div(area).to(float64).data<double>().ToArray();
    }

    /// <summary>
    /// Per image: the variance of the 4-neighbour Laplacian of the luma (0–255) over the mask's pixels whose whole
    /// 3×3 neighbourhood is inside the image. Stripes and checkerboards raise it; blur lowers it.
    /// </summary>
    public static double[] LaplacianVariance(Tensor images, Tensor mask)
    {
        using var scope = NewDisposeScope();
        var luma = images.add(1).mul(127.5);
        luma = luma[.., 0..1].mul(0.299).add(luma[.., 1..2].mul(0.587)).add(luma[.., 2..3].mul(0.114));
        var kernel = tensor(new float[] { 0, 1, 0, 1, -4, 1, 0, 1, 0 }, [1, 1, 3, 3]).to(luma.dtype);
        var lap = nn.functional.conv2d(luma, kernel);
        long r = images.shape[2];
        var m = mask[.., .., 1..(int)(r - 1), 1..(int)(r - 1)];
        var count = m.sum([1L, 2L, 3L]).clamp_min(1);
        var mean = lap.mul(m).sum([1L, 2L, 3L]).div(count);
        var variance = lap.sub(mean.view(-1, 1, 1, 1)).pow(2).mul(m).sum([1L, 2L, 3L]).div(count);
        return variance.to(float64).data<double>().ToArray();
    }

    /// <summary>A model swaps when its judge_source_rate is more than <see cref="SwapMargin"/> above copy-target's.</summary>
    public static bool Swaps(double judgeSourceRate, double copyTargetSourceRate) => judgeSourceRate > copyTargetSourceRate + SwapMargin;

    /// <summary>Fills <see cref="SwapJudgeRow.Swaps"/> of every row from the copy-target row of its pair set and path.</summary>
    public static void FlagSwaps(IList<SwapJudgeRow> rows)
    {
        foreach (var row in rows)
        {
            var baseline = rows.FirstOrDefault(r => r.Model == CopyTarget && r.PairSet == row.PairSet && r.Path == row.Path);
            row.Swaps = row.Model == CopyTarget ? "baseline"
                : baseline is null ? "" : Swaps(row.JudgeSourceRate, baseline.JudgeSourceRate) ? "yes" : "no";
        }
    }

    /// <summary>
    /// Held-in pairs: for every ordered pair of distinct identities that train and have `test` video frames (franck
    /// and the cap12/cap13 man: both directions), targets of one and sources of the other, evenly spaced in id order,
    /// <paramref name="count"/> in all (at least one per direction). The alternative source, for
    /// source_sensitivity, is another face of the target's identity: a different person from the source.
    /// </summary>
    public static JudgePairSet HeldInPairs(FaceSwapData data, IReadOnlySet<string> trainIdentities, int count)
    {
        var video = VideoFacesByIdentity(data, trainIdentities);
        if (video.Count < 2) throw new InvalidDataException($"held-in pairs need two training identities with `{data.Records[0].Split}` video frames; found {video.Count}");
        var directions = video.Keys.SelectMany(t => video.Keys.Where(s => s != t).Select(s => (t, s))).ToList();
        int perDirection = (count + directions.Count - 1) / directions.Count;
        var targets = new List<int>(); var sources = new List<int>(); var alternatives = new List<int>();
        foreach (var (t, s) in directions)
        {
            var tf = video[t]; var sf = video[s];
            for (int i = 0; i < perDirection; i++)
            {
                targets.Add(tf[(int)((long)i * tf.Count / perDirection)]);
                // Offset by half a step so source and target positions in their videos differ.
                sources.Add(sf[(int)(((long)i * sf.Count + sf.Count / 2) / perDirection) % sf.Count]);
                alternatives.Add(tf[(int)(((long)i * tf.Count + tf.Count / 2) / perDirection) % tf.Count]);
            }
        }
        return new JudgePairSet(HeldIn, [.. targets], [.. sources], [.. alternatives]);
    }

    /// <summary>
    /// Unseen pairs: every still-photo face of an identity that never trains, as a source, onto held-in video targets
    /// taken in turn (evenly spaced, alternating identities). The alternative source is the next unseen face of
    /// another identity.
    /// </summary>
    public static JudgePairSet UnseenPairs(FaceSwapData data, IReadOnlySet<string> trainIdentities)
    {
        var unseen = Enumerable.Range(0, data.Count)
            .Where(i => data.Records[i].Frame < 0 && !trainIdentities.Contains(data.Records[i].Identity))
            .OrderBy(i => data.Records[i].Id, StringComparer.Ordinal).ToList();
        if (unseen.Count < 2 || unseen.Select(i => data.Records[i].Identity).Distinct().Count() < 2)
            throw new InvalidDataException($"unseen pairs need still-photo faces of two or more identities outside train in the `{data.Records[0].Split}` split; found {unseen.Count}");
        var video = VideoFacesByIdentity(data, trainIdentities);
        if (video.Count == 0) throw new InvalidDataException("unseen pairs need held-in video targets");
        var pools = video.Values.ToList();
        var targets = new int[unseen.Count]; var alternatives = new int[unseen.Count];
        for (int i = 0; i < unseen.Count; i++)
        {
            var pool = pools[i % pools.Count];
            int k = i / pools.Count, perPool = (unseen.Count + pools.Count - 1) / pools.Count;
            targets[i] = pool[(int)((long)k * pool.Count / perPool)];
            string identity = data.Records[unseen[i]].Identity;
            alternatives[i] = Enumerable.Range(1, unseen.Count).Select(d => unseen[(i + d) % unseen.Count]).First(j => data.Records[j].Identity != identity);
        }
        return new JudgePairSet(Unseen, targets, [.. unseen], alternatives);
    }

    private static SortedDictionary<string, List<int>> VideoFacesByIdentity(FaceSwapData data, IReadOnlySet<string> trainIdentities)
    {
        var result = new SortedDictionary<string, List<int>>(StringComparer.Ordinal);
        foreach (var i in Enumerable.Range(0, data.Count).OrderBy(i => data.Records[i].Id, StringComparer.Ordinal))
        {
            var r = data.Records[i];
            if (r.Frame < 0 || !trainIdentities.Contains(r.Identity)) continue;
            if (!result.TryGetValue(r.Identity, out var list)) result[r.Identity] = list = [];
            list.Add(i);
        }
        return result;
    }

    /// <summary>The identities of a dataset's `train` split.</summary>
    public static HashSet<string> TrainIdentities(string datasetDir) =>
        FaceManifest.Read(Path.Combine(datasetDir, FaceManifest.FileName)).Where(r => r.Split == Splits.Train).Select(r => r.Identity).ToHashSet();

    /// <summary>
    /// The face box of a dataset face in its crop's pixels at <paramref name="resolution"/>: the detector's box in the
    /// frame mapped through the stored alignment (bounding box of the mapped corners). Landmarks of the target and of
    /// the output are both taken in this box, so landmark_nme compares content, not detections.
    /// </summary>
    public static FaceBox CropBox(FaceRecord record, int resolution)
    {
        var toCrop = Affine2D.Parse(record.Affine);
        double s = (double)resolution / record.CropSize;
        var corners = new[] { (record.BoxX1, record.BoxY1), (record.BoxX2, record.BoxY1), (record.BoxX1, record.BoxY2), (record.BoxX2, record.BoxY2) }
            .Select(p => toCrop.Apply(p.Item1, p.Item2)).ToList();
        return new FaceBox((float)(corners.Min(p => p.X) * s), (float)(corners.Min(p => p.Y) * s),
            (float)(corners.Max(p => p.X) * s), (float)(corners.Max(p => p.Y) * s), record.DetectorScore);
    }

    /// <summary>
    /// Measures a swap function on the crop: <paramref name="swap"/> maps (target crops [N,3,R,R] in [−1,1], source
    /// embeddings [N,512]) to output crops (clamped to [−1,1] here). The judge reads output, source and target crops
    /// through its dlib box; landmarks are taken in the target's mapped detector box; the face region is the
    /// target's landmark hull.
    /// </summary>
    public static SwapJudgeRow Measure(string model, Func<Tensor, Tensor, Tensor> swap, FaceSwapData data, JudgePairSet pairs,
        IdentityJudge judge, LandmarkDetector landmarks, int batchSize = 8)
    {
        var toSource = new List<double>(); var toTarget = new List<double>();
        double nme = 0, sensitivity = 0, hfRatio = 0;
        using var noGrad = no_grad();
        for (int start = 0; start < pairs.Count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            var t = pairs.Targets.Skip(start).Take(batchSize).ToArray();
            using var batch = data.Pairs(t, pairs.Sources.Skip(start).Take(batchSize).ToArray());
            using var alternative = data.Pairs(t, pairs.AlternativeSources.Skip(start).Take(batchSize).ToArray());
            var output = swap(batch.Target, batch.Source).clamp(-1.0, 1.0);
            var outputAlternative = swap(batch.Target, alternative.Source).clamp(-1.0, 1.0);
            var descOut = judge.DescribeCrops(output);
            toSource.AddRange(IdentityJudge.Distances(descOut, judge.DescribeCrops(batch.SourceImage)));
            toTarget.AddRange(IdentityJudge.Distances(descOut, judge.DescribeCrops(batch.Target)));
            sensitivity += MeanAbsChange(output, outputAlternative, batch.FaceMask).Sum();
            var varOut = LaplacianVariance(output, batch.FaceMask);
            var varTarget = LaplacianVariance(batch.Target, batch.FaceMask);
            for (int i = 0; i < t.Length; i++)
            {
                hfRatio += varOut[i] / Math.Max(varTarget[i], 1e-6);
                var box = CropBox(data.Records[t[i]], data.Resolution);
                var targetPoints = landmarks.Detect(ImageGrid.ToImage(batch.Target[i]), box);
                var outputPoints = landmarks.Detect(ImageGrid.ToImage(output[i]), box);
                nme += LandmarkNme(outputPoints, targetPoints);
            }
        }
        var (sourceRate, targetRate) = Verdicts(toSource, toTarget);
        int n = pairs.Count;
        return new SwapJudgeRow
        {
            Model = model, PairSet = pairs.Name, Path = CropPath, Pairs = n, JudgeSourceRate = sourceRate, JudgeTargetRate = targetRate,
            JudgeSourceDist = toSource.Average(), JudgeTargetDist = toTarget.Average(), LandmarkNme = nme / n,
            SourceSensitivity = sensitivity / n, HfRatio = hfRatio / n, Split = data.Records[0].Split, Cpu = CpuInfo.Describe,
        };
    }

    /// <summary>
    /// Measures the whole swap path on a subset: each target's full video frame is swapped by
    /// <paramref name="pipeline"/> (detect, align, swap, colour, paste; null = copy-target, the frame unchanged), then
    /// the largest face of the result is detected again, its 68 landmarks found and aligned onto arcface_128 at 256 px,
    /// and judged against the source's crop and the target frame's face aligned the same way. Sources are the dataset's
    /// stored embeddings (as on the crop path).
    /// </summary>
    public static SwapJudgeRow MeasureFullFrame(string model, FaceSwapPipeline? pipeline, FaceSwapData data, JudgePairSet pairs,
        string datasetDir, AssetPaths assets, IdentityJudge judge, FaceDetector detector, LandmarkDetector landmarks)
    {
        const int size = 256;
        var frames = TargetFrames(data, pairs.Targets, assets);
        var toSource = new List<double>(); var toTarget = new List<double>();
        double nme = 0;
        var embeddings = FaceManifest.ReadAllEmbeddings(datasetDir);
        for (int i = 0; i < pairs.Count; i++)
        {
            var target = data.Records[pairs.Targets[i]];
            var source = data.Records[pairs.Sources[i]];
            var frame = frames[pairs.Targets[i]];
            var result = pipeline is null ? frame : pipeline.Swap(frame, embeddings[source.EmbeddingOffset]).Image;
            var (targetCrop, targetPoints) = LargestFaceCrop(frame, detector, landmarks, size, $"{target.SourceFile} frame {target.Frame}");
            var (outputCrop, outputPoints) = LargestFaceCrop(result, detector, landmarks, size, $"{model} on {target.SourceFile} frame {target.Frame}");
            var sourceCrop = RgbImage.Load(Path.Combine(datasetDir, source.CropFile));
            if (sourceCrop.Width != size) sourceCrop = sourceCrop.Resize(size, size);
            using var scope = NewDisposeScope();
            var d = judge.DescribeCrops(JudgeVerification.ToCropTensor([outputCrop, sourceCrop, targetCrop]));
            var desc = Enumerable.Range(0, 3).Select(k => d[k].data<float>().ToArray()).ToArray();
            toSource.Add(IdentityJudge.Distance(desc[0], desc[1]));
            toTarget.Add(IdentityJudge.Distance(desc[0], desc[2]));
            nme += LandmarkNme(outputPoints, targetPoints);
        }
        var (sourceRate, targetRate) = Verdicts(toSource, toTarget);
        return new SwapJudgeRow
        {
            Model = model, PairSet = pairs.Name, Path = FullFramePath, Pairs = pairs.Count, JudgeSourceRate = sourceRate, JudgeTargetRate = targetRate,
            JudgeSourceDist = toSource.Average(), JudgeTargetDist = toTarget.Average(), LandmarkNme = nme / pairs.Count,
            Split = data.Records[0].Split, Cpu = CpuInfo.Describe,
        };
    }

    /// <summary>The largest face: its arcface_128 crop at <paramref name="size"/> and its 68 landmarks in the image.</summary>
    private static (RgbImage Crop, (double X, double Y)[] Points) LargestFaceCrop(RgbImage image, FaceDetector detector, LandmarkDetector landmarks, int size, string what) =>
        TryLargestFaceCrop(image, detector, landmarks, size) ?? throw new InvalidDataException($"{what}: no face detected");

    /// <summary>
    /// The largest face detected again in a (swapped) image: its arcface_128 crop at <paramref name="size"/>, as the
    /// judge reads faces on the full swap path, and its 68 landmarks; null when no face is found.
    /// </summary>
    public static (RgbImage Crop, (double X, double Y)[] Points)? TryLargestFaceCrop(RgbImage image, FaceDetector detector, LandmarkDetector landmarks, int size = 256)
    {
        var faces = detector.Detect(image);
        if (faces.Count == 0) return null;
        var face = faces.MaxBy(f => f.Area);
        var points = landmarks.Detect(image, face);
        var toCrop = FaceTemplates.AlignmentTransform(FaceTemplates.FivePointsFrom68(points), FaceTemplates.Arcface128, size);
        return (image.WarpAffine(toCrop, size, size), points);
    }

    /// <summary>
    /// The judge's verdict on one output from its distances to the source and the target (the rule of
    /// <see cref="Verdicts"/>): "source", "target", or "neither" (both at or above the threshold).
    /// </summary>
    public static string Verdict(double toSource, double toTarget) =>
        toSource < IdentityJudge.SameThreshold && toSource < toTarget ? "source"
        : toTarget < IdentityJudge.SameThreshold && toTarget <= toSource ? "target" : "neither";

    /// <summary>Decodes the full video frames of the given faces (one pass per video).</summary>
    private static Dictionary<int, RgbImage> TargetFrames(FaceSwapData data, IEnumerable<int> faces, AssetPaths assets)
    {
        var result = new Dictionary<int, RgbImage>();
        foreach (var video in faces.Distinct().GroupBy(i => data.Records[i].SourceFile))
        {
            string path = video.Key.StartsWith("cache:", StringComparison.Ordinal) ? Path.Combine(assets.Root, video.Key["cache:".Length..]) : video.Key;
            if (!File.Exists(path)) throw new FileNotFoundException($"{path}: the video of face {data.Records[video.First()].Id} is missing (run `make setup`)", path);
            var wanted = video.GroupBy(i => data.Records[i].Frame).ToDictionary(g => g.Key, g => g.ToList());
            int last = wanted.Keys.Max();
            foreach (var (index, frame) in VideoReader.ReadFrames(path))
            {
                if (wanted.TryGetValue(index, out var ids)) foreach (var id in ids) result[id] = frame;
                if (index >= last) break;
            }
            var missing = video.FirstOrDefault(i => !result.ContainsKey(i), -1);
            if (missing >= 0) throw new InvalidDataException($"{path}: frame {data.Records[missing].Frame} of face {data.Records[missing].Id} not found");
        }
        return result;
    }

    /// <summary>An ONNX swapper as a swap function for <see cref="Measure"/>.</summary>
    public static Func<Tensor, Tensor, Tensor> OrtSwap(OrtSwapper swapper) => (target, source) =>
    {
        int n = (int)target.shape[0], r = swapper.Resolution;
        var (output, _) = swapper.Run(target.contiguous().data<float>().ToArray(), source.contiguous().data<float>().ToArray(), n);
        return tensor(output, [n, 3, r, r]);
    };

    /// <summary>The copy-target baseline: output := target.</summary>
    public static Tensor CopyTargetSwap(Tensor target, Tensor source) => target.alias();

    /// <summary>A markdown table of judge rows with the "does not swap" flag spelled out.</summary>
    public static string Markdown(IEnumerable<SwapJudgeRow> rows)
    {
        static string F(double? v, string f) => v is double d && double.IsFinite(d) ? d.ToString(f, CultureInfo.InvariantCulture) : "—";
        var md = new System.Text.StringBuilder();
        md.AppendLine("| model | pair set | path | pairs | judge source rate | judge target rate | judge source dist | judge target dist | landmark NME | source sensitivity | HF ratio | swaps? |");
        md.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var r in rows)
            md.AppendLine($"| {r.Model} | {r.PairSet} | {r.Path} | {r.Pairs} | {F(r.JudgeSourceRate, "0.000")} | {F(r.JudgeTargetRate, "0.000")} | {F(r.JudgeSourceDist, "0.000")} | {F(r.JudgeTargetDist, "0.000")} | {F(r.LandmarkNme, "0.0000")} | {F(r.SourceSensitivity, "0.00")} | {F(r.HfRatio, "0.000")} | {(r.Swaps == "no" ? "**does not swap**" : r.Swaps)} |");
        return md.ToString();
    }
}
