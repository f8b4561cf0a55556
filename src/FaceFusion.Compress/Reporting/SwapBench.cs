using FaceFusion.Compress.Export;
using System.Diagnostics;
using System.Globalization;
using FaceFusion.Compress.Assets;
using FaceFusion.Compress.Data;
using FaceFusion.Compress.Imaging;
using FaceFusion.Compress.Judging;
using FaceFusion.Compress.Models.Architectures;
using FaceFusion.Compress.Models.Checkpoints;
using FaceFusion.Compress.Models.Graph;
using FaceFusion.Compress.Models.Networks;
using FaceFusion.Compress.Quantization;
using FaceFusion.Compress.Runtime;
using FaceFusion.Compress.Training;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using TorchSharp;
using static TorchSharp.torch;
using Tensor = TorchSharp.torch.Tensor;

namespace FaceFusion.Compress.Reporting;

/// <summary>Options of `ffc bench`.</summary>
public sealed record BenchOptions
{
    public required string ModelPath { get; init; }
    /// <summary>TorchSharp checkpoint the ONNX model came from (parity).</summary>
    public string? Reference { get; init; }
    /// <summary>Teacher ONNX model (PSNR of this model's outputs against the teacher's).</summary>
    public string? Teacher { get; init; }
    public required string DataDir { get; init; }
    public string Split { get; init; } = Splits.Test;
    public int Runs { get; init; } = 50;
    public int Pairs { get; init; } = 64;
    public OrtSettings Ort { get; init; } = new();
    /// <summary>Session load time measured in a fresh process by the caller; measured here (second session of this process) when null.</summary>
    public double? FreshProcessLoadMs { get; init; }
    public int Seed { get; init; } = 1;
    /// <summary>
    /// The identity embedder the model was trained with (ONNX); null: the bundled one. Sources are then embedded with
    /// it from their crops, and identity cosine is measured with it.
    /// </summary>
    public string? Embedder { get; init; }
    /// <summary>Pixel normalisation of <see cref="Embedder"/>: ffc or insightface.</summary>
    public string EmbedderNormalization { get; init; } = "ffc";
    /// <summary>
    /// Held-in pairs for the judge's swap metrics (both directions together, as `ffc benchmark swap-judge`); the
    /// unseen set is capped at the same number. At least 2.
    /// </summary>
    public int JudgePairs { get; init; } = 64;
    /// <summary>
    /// Pairs of each set also judged through the whole `ffc swap` path (paste back into the frame, detect again,
    /// align), for the model and copy-target; 0: crop only.
    /// </summary>
    public int JudgeFullFrame { get; init; }
    /// <summary>
    /// copy-target rows already measured on the same dataset, split, resolution and <see cref="JudgePairs"/> (a
    /// recipe's bench passes the first model's to the others); null: measured here. A row whose pair count differs
    /// is measured again.
    /// </summary>
    public IReadOnlyList<SwapJudgeRow>? CopyTargetJudge { get; init; }
}

/// <summary>Everything one bench run measured.</summary>
public sealed record BenchResult(BenchRow Row, IReadOnlyList<SliceRow> Slices, IReadOnlyList<double> LatenciesMs)
{
    /// <summary>Set when the model's `embedder` metadata names another embedder than the one identity was measured with.</summary>
    public string? EmbedderMismatch { get; init; }

    /// <summary>The precision read from the graph (the row's `precision`) and the evidence; metadata is a hint only.</summary>
    public DetectedPrecision? Precision { get; init; }

    /// <summary>Images/s with 1, 2, 4 and 8 caller threads sharing the session.</summary>
    public IReadOnlyList<ThroughputRow> Throughput { get; init; } = [];

    /// <summary>The judge's rows (crop path): copy-target and this model, per pair set the dataset allows, flagged.</summary>
    public IReadOnlyList<SwapJudgeRow> Judge { get; init; } = [];

    /// <summary>Why a pair set is missing from <see cref="Judge"/> (e.g. no still-photo identities outside train).</summary>
    public IReadOnlyList<string> JudgeNotes { get; init; } = [];
}

/// <summary>
/// Validates a deployable swapper in ONNX Runtime: load time, latency percentiles, throughput, achieved vs peak
/// GMAC/s, parity with its TorchSharp source, reconstruction PSNR/SSIM, identity cosine (embedder through ORT),
/// an LPIPS-like perceptual distance, PSNR against a teacher, and quality slices (profile, low light, occlusion,
/// unseen identities).
/// </summary>
public static class SwapBench
{
    /// <summary>Creates the first session of a model and returns milliseconds; the file is read once first so it is in the page cache.</summary>
    public static double MeasureLoadMs(string path, OrtSettings settings)
    {
        _ = File.ReadAllBytes(path);
        OrtSessions.EnsureEnvironment();
        var watch = Stopwatch.StartNew();
        using var session = OrtSessions.Open(path, settings);
        return watch.Elapsed.TotalMilliseconds;
    }

    /// <summary>GMAC/s of a 1024×1024×1024 float32 MatMul in ONNX Runtime with the same settings: the machine's practical peak.</summary>
    public static double MeasurePeakGmacs(OrtSettings settings, int n = 1024, int runs = 10)
    {
        var graph = new Onnx.GraphProto { Name = "peak" };
        var node = new Onnx.NodeProto { OpType = "MatMul", Name = "mm" };
        node.Input.Add("a"); node.Input.Add("b"); node.Output.Add("c");
        graph.Node.Add(node);
        Onnx.ValueInfoProto Info(string name)
        {
            var shape = new Onnx.TensorShapeProto();
            shape.Dim.Add(new Onnx.TensorShapeProto.Types.Dimension { DimValue = n });
            shape.Dim.Add(new Onnx.TensorShapeProto.Types.Dimension { DimValue = n });
            return new Onnx.ValueInfoProto { Name = name, Type = new Onnx.TypeProto { TensorType = new Onnx.TypeProto.Types.Tensor { ElemType = 1, Shape = shape } } };
        }
        graph.Input.Add(Info("a")); graph.Input.Add(Info("b")); graph.Output.Add(Info("c"));
        var model = new Onnx.ModelProto { IrVersion = 8, Graph = graph };
        model.OpsetImport.Add(new Onnx.OperatorSetIdProto { Version = 17 });
        OrtSessions.EnsureEnvironment();
        using var options = OrtSessions.CreateOptions(settings);
        using var session = new InferenceSession(model.ToByteArray(), options);
        var rng = new Random(1);
        var data = Enumerable.Range(0, n * n).Select(_ => (float)rng.NextDouble()).ToArray();
        var inputs = new[] { NamedOnnxValue.CreateFromTensor("a", new DenseTensor<float>(data, [n, n])), NamedOnnxValue.CreateFromTensor("b", new DenseTensor<float>(data, [n, n])) };
        session.Run(inputs).Dispose();
        var best = double.MaxValue;
        for (int i = 0; i < runs; i++)
        {
            var w = Stopwatch.StartNew();
            session.Run(inputs).Dispose();
            best = Math.Min(best, w.Elapsed.TotalSeconds);
        }
        return (double)n * n * n / best / 1e9;
    }

    public static BenchResult Run(BenchOptions o, AssetPaths assets, IProgress<string>? status = null)
    {
        var file = new FileInfo(o.ModelPath);
        if (!file.Exists) throw new FileNotFoundException($"{o.ModelPath}: model file not found", o.ModelPath);
        double loadMs = o.FreshProcessLoadMs ?? MeasureLoadMs(o.ModelPath, o.Ort);
        using var swapper = new OrtSwapper(o.ModelPath, o.Ort);
        int r = swapper.Resolution;
        var meta = swapper.Metadata;
        // From the graph: other quantizers copy the FP32 file's `precision` metadata into their INT8 file.
        var precision = OnnxPrecision.Detect(o.ModelPath);
        long parameters = meta.TryGetValue("params", out var ps) ? long.Parse(ps, CultureInfo.InvariantCulture) : 0;
        long macs = meta.TryGetValue("macs", out var ms) ? long.Parse(ms, CultureInfo.InvariantCulture) : 0;
        if (o.Reference is not null && (parameters == 0 || macs == 0))
        {
            var summary = ModelSummary.Of(Checkpoint.LoadGraph(o.Reference), r);
            (parameters, macs) = (summary.Params, summary.Macs);
        }

        status?.Report("latency");
        var rng = new Random(o.Seed);
        float[] RandomValues(int count, float scale) => Enumerable.Range(0, count).Select(_ => (float)(rng.NextDouble() * 2 - 1) * scale).ToArray();
        var target1 = RandomValues(3 * r * r, 1f);
        var source1 = IdentityEmbedder.Normalize(RandomValues(512, 1f));
        for (int i = 0; i < 5; i++) swapper.Run(target1, source1, 1);
        var latencies = new List<double>();
        for (int i = 0; i < Math.Max(50, o.Runs); i++)
        {
            var w = Stopwatch.StartNew();
            swapper.Run(target1, source1, 1);
            latencies.Add(w.Elapsed.TotalMilliseconds);
        }
        var target8 = Enumerable.Range(0, 8).SelectMany(_ => target1).ToArray();
        var source8 = Enumerable.Range(0, 8).SelectMany(_ => source1).ToArray();
        swapper.Run(target8, source8, 8);
        var w8 = Stopwatch.StartNew();
        const int batchRuns = 5;
        for (int i = 0; i < batchRuns; i++) swapper.Run(target8, source8, 8);
        double batch8Fps = 8.0 * batchRuns / w8.Elapsed.TotalSeconds;
        status?.Report("throughput vs caller threads");
        var throughput = Throughput(swapper, Path.GetFileNameWithoutExtension(o.ModelPath), target1, source1, o.Ort.EffectiveThreads);
        status?.Report("machine peak");
        double peak = MeasurePeakGmacs(o.Ort);
        double p50 = Percentile(latencies, 50);

        status?.Report("quality");
        using var data = new FaceSwapData(o.DataDir, o.Split, r);
        var (targets, sources) = SwapTrainer.EvaluationPairs(data, o.Pairs, o.Seed);
        var embedderPath = o.Embedder ?? assets.IdentityEmbedder;
        if (!File.Exists(embedderPath)) throw new FileNotFoundException($"{embedderPath}: identity embedder not found", embedderPath);
        using var embedder = new IdentityEmbedder(embedderPath, o.Ort, o.Embedder is null ? "ffc" : o.EmbedderNormalization);
        // A custom embedder: the dataset's stored embeddings come from the bundled one, so sources are re-embedded.
        using var sourceNetwork = o.Embedder is null ? null : new IdentityNetwork(o.Embedder, o.EmbedderNormalization);
        if (sourceNetwork is not null) data.SourceEmbedder = images => sourceNetwork.call(images);
        string? mismatch = meta.TryGetValue("embedder", out var trainedOn) && !trainedOn.StartsWith(Path.GetFileName(embedderPath), StringComparison.Ordinal)
            ? $"{o.ModelPath} was trained on embeddings of {trainedOn}, identity is measured with {Path.GetFileName(embedderPath)} (give --embedder)" : null;
        using var perceptual = PerceptualNetwork.ResNet18(assets.ResNet18, assets.ResNetPreprocess);
        // A QAT/PTQ model folder is loaded with its simulator: parity is then INT8 against its fake-quant simulation.
        var (reference, simulator) = o.Reference is null ? (null, null)
            : QuantizationAware.IsQuantized(o.Reference) ? QuantizationAware.Load(o.Reference) : (Checkpoint.Load(o.Reference), null);
        using var referenceScope = reference;
        using var simulatorScope = simulator;
        reference?.eval();
        using var teacher = o.Teacher is null ? null : new OrtSwapper(o.Teacher, o.Ort);
        if (teacher is not null && teacher.Resolution != r)
            throw new InvalidDataException($"{o.Teacher}: teacher runs at {teacher.Resolution} px, the model at {r} px; export both at one resolution");

        var quality = Measure(swapper, data, targets, targets, sources, embedder, perceptual, reference, teacher, Transform.None);
        var slices = new List<SliceRow> { Slice("all", quality) };
        var profile = targets.Where(t => Math.Abs(data.Records[t].YawDegrees) > 25).ToArray();
        slices.Add(Slice("profile", profile.Length == 0 ? null : Measure(swapper, data, profile, profile, sources.Where((_, i) => profile.Contains(targets[i])).ToArray(), embedder, null, null, null, Transform.None)));
        slices.Add(Slice("low_light", Measure(swapper, data, targets, targets, sources, embedder, null, null, null, Transform.LowLight)));
        slices.Add(Slice("occlusion", Measure(swapper, data, targets, targets, sources, embedder, null, null, null, Transform.Occlusion)));
        var unseen = targets.Where(t => data.Records[t].Frame < 0 && data.Records[t].Identity is not ("franck" or "cap-man")).ToArray();
        slices.Add(Slice("unseen_identity", unseen.Length == 0 ? null : Measure(swapper, data, unseen, unseen, sources.Where((_, i) => unseen.Contains(targets[i])).ToArray(), embedder, null, null, null, Transform.None)));
        var name = Path.GetFileNameWithoutExtension(o.ModelPath);
        foreach (var s in slices) s.Model = name;

        status?.Report("swap judge");
        var (judgeRows, judgeNotes) = JudgeSwaps(name, swapper, data, o, assets);
        var heldIn = judgeRows.FirstOrDefault(j => j.Model != SwapJudging.CopyTarget && j.PairSet == SwapJudging.HeldIn && j.Path == SwapJudging.CropPath);

        double? torchP50 = null;
        if (reference is not null)
        {
            status?.Report("TorchSharp eager latency");
            int previous = torch.get_num_threads();
            torch.set_num_threads(o.Ort.EffectiveThreads);
            using var t = tensor(target1, [1, 3, r, r]);
            using var src = tensor(source1, [1, 512]);
            var feeds = new Dictionary<string, Tensor> { [SwapperIO.Target] = t, [SwapperIO.Source] = src };
            var times = new List<double>();
            using (no_grad())
                for (int i = 0; i < 25; i++)
                {
                    var w = Stopwatch.StartNew();
                    foreach (var v in reference.call(feeds).Values) v.Dispose();
                    if (i >= 5) times.Add(w.Elapsed.TotalMilliseconds);
                }
            torch.set_num_threads(previous);
            torchP50 = Percentile(times, 50);
        }
        using var process = Process.GetCurrentProcess();
        var row = new BenchRow
        {
            Model = name, Precision = precision.Precision, Resolution = r, Params = parameters, Macs = macs,
            FileBytes = file.Length, LoadMs = loadMs, P50Ms = p50, P90Ms = Percentile(latencies, 90), P95Ms = Percentile(latencies, 95),
            P99Ms = Percentile(latencies, 99), Fps = 1000.0 / p50, Batch8Fps = batch8Fps,
            ParityPsnrDb = quality.ParityPsnr, MaxAbsErr = quality.MaxAbsErr, PsnrDb = quality.Psnr, Ssim = quality.Ssim,
            IdCosine = quality.IdCosine, PerceptualDistance = quality.Perceptual ?? double.NaN, PsnrVsTeacherDb = quality.PsnrVsTeacher,
            Threads = o.Ort.EffectiveThreads, Provider = "CPUExecutionProvider", MachinePeakGmacs = peak, Cpu = CpuInfo.Describe,
            AchievedGmacs = macs / 1e9 * (1000.0 / p50), PeakRssMb = process.PeakWorkingSet64 / 1024.0 / 1024.0,
            GraphOptimization = o.Ort.OptimizationLevel.ToString(), LoadInFreshProcess = o.FreshProcessLoadMs is not null,
            Pairs = targets.Length, Split = o.Split, TimestampUtc = DateTime.UtcNow.ToString("o", CultureInfo.InvariantCulture),
            TorchP50Ms = torchP50,
            JudgePairs = heldIn?.Pairs, JudgeSourceRate = heldIn?.JudgeSourceRate, JudgeTargetRate = heldIn?.JudgeTargetRate,
            JudgeSourceDist = heldIn?.JudgeSourceDist, LandmarkNme = heldIn?.LandmarkNme, SourceSensitivity = heldIn?.SourceSensitivity,
            HfRatio = heldIn?.HfRatio, Swaps = heldIn?.Swaps,
        };
        return new BenchResult(row, slices, latencies) { Throughput = throughput, EmbedderMismatch = mismatch, Judge = judgeRows, JudgeNotes = judgeNotes, Precision = precision };
    }

    /// <summary>
    /// The issue-21 swap metrics on the crop: the held-in and unseen pair sets of <paramref name="data"/>'s split (a
    /// set the dataset cannot form is left out with a note), each measured for copy-target (or taken from
    /// <see cref="BenchOptions.CopyTargetJudge"/>) and for the model, then flagged against copy-target.
    /// </summary>
    public static (List<SwapJudgeRow> Rows, List<string> Notes) JudgeSwaps(string model, OrtSwapper swapper, FaceSwapData data, BenchOptions o, AssetPaths assets)
    {
        if (o.JudgePairs < 2) throw new ArgumentException($"judge pairs {o.JudgePairs}: need at least 2 (one per direction)");
        var train = SwapJudging.TrainIdentities(o.DataDir);
        var sets = new List<JudgePairSet>();
        var notes = new List<string>();
        // The two builders throw InvalidDataException only when the dataset cannot form their set: that is a note here, not a failure.
        try { sets.Add(SwapJudging.HeldInPairs(data, train, o.JudgePairs)); }
        catch (InvalidDataException e) { notes.Add($"{SwapJudging.HeldIn}: {e.Message}"); }
        try { sets.Add(SwapJudging.UnseenPairs(data, train).Subset(o.JudgePairs)); }
        catch (InvalidDataException e) { notes.Add($"{SwapJudging.Unseen}: {e.Message}"); }
        var rows = new List<SwapJudgeRow>();
        if (sets.Count == 0) return (rows, notes);
        using var judge = IdentityJudge.Open(assets);
        using var landmarks = new LandmarkDetector(assets.Landmarks, o.Ort);
        foreach (var set in sets)
        {
            rows.Add(o.CopyTargetJudge?.FirstOrDefault(r => r.Model == SwapJudging.CopyTarget && r.PairSet == set.Name && r.Path == SwapJudging.CropPath
                         && r.Pairs == set.Count && r.Split == data.Records[0].Split)
                     ?? SwapJudging.Measure(SwapJudging.CopyTarget, SwapJudging.CopyTargetSwap, data, set, judge, landmarks));
            rows.Add(SwapJudging.Measure(model, SwapJudging.OrtSwap(swapper), data, set, judge, landmarks));
        }
        if (o.JudgeFullFrame > 0)
        {
            using var detector = new FaceDetector(assets.Detector, o.Ort);
            using var pipeline = new FaceSwapPipeline(assets, swapper.Path, new SwapOptions { Ort = o.Ort });
            foreach (var set in sets)
            {
                var subset = set.Subset(o.JudgeFullFrame);
                rows.Add(o.CopyTargetJudge?.FirstOrDefault(r => r.Model == SwapJudging.CopyTarget && r.PairSet == set.Name && r.Path == SwapJudging.FullFramePath
                             && r.Pairs == subset.Count && r.Split == data.Records[0].Split)
                         ?? SwapJudging.MeasureFullFrame(SwapJudging.CopyTarget, null, data, subset, o.DataDir, assets, judge, detector, landmarks));
                rows.Add(SwapJudging.MeasureFullFrame(model, pipeline, data, subset, o.DataDir, assets, judge, detector, landmarks));
            }
        }
        SwapJudging.FlagSwaps(rows);
        return (rows, notes);
    }

    /// <summary>
    /// One session, 1/2/4/8 caller threads, 12 batch-1 requests each: the serving throughput (ONNX Runtime sessions are
    /// thread-safe; each request still uses the session's intra-op threads).
    /// </summary>
    public static List<ThroughputRow> Throughput(OrtSwapper swapper, string model, float[] target, float[] source, int intraOpThreads, int requests = 12)
    {
        var rows = new List<ThroughputRow>();
        foreach (int callers in new[] { 1, 2, 4, 8 })
        {
            var times = new System.Collections.Concurrent.ConcurrentBag<double>();
            var watch = Stopwatch.StartNew();
            Parallel.For(0, callers, new ParallelOptions { MaxDegreeOfParallelism = callers }, _ =>
            {
                for (int i = 0; i < requests; i++)
                {
                    var w = Stopwatch.StartNew();
                    swapper.Run(target, source, 1);
                    times.Add(w.Elapsed.TotalMilliseconds);
                }
            });
            rows.Add(new ThroughputRow
            {
                Model = model, Callers = callers, Requests = callers * requests, IntraOpThreads = intraOpThreads,
                ImagesPerS = callers * requests / watch.Elapsed.TotalSeconds, P50Ms = Percentile(times.ToList(), 50),
            });
        }
        return rows;
    }

    private static SliceRow Slice(string name, Quality? q) => new()
    {
        Slice = name, Count = q?.Count ?? 0, PsnrDb = q?.Psnr, Ssim = q?.Ssim, IdCosine = q?.IdCosine,
    };

    private enum Transform { None, LowLight, Occlusion }

    private sealed record Quality(int Count, double Psnr, double Ssim, double IdCosine, double? Perceptual, double? ParityPsnr, double? MaxAbsErr, double? PsnrVsTeacher);

    /// <summary>Same-identity reconstructions of <paramref name="recon"/> and cross-identity swaps of (targets, sources).</summary>
    private static Quality Measure(OrtSwapper swapper, FaceSwapData data, int[] recon, int[] targets, int[] sources, IdentityEmbedder embedder,
        PerceptualNetwork? perceptual, GraphModule? reference, OrtSwapper? teacher, Transform transform)
    {
        int r = swapper.Resolution;
        double psnr = 0, ssim = 0, idCos = 0, perceptualSum = 0, parityMse = 0, maxAbs = 0, teacherPsnr = 0;
        const int batch = 8;
        var toEmbedder = FaceTemplates.CropToCrop(FaceTemplates.Arcface128, r, FaceTemplates.Arcface112V2, IdentityEmbedder.CropSize);
        for (int start = 0; start < targets.Length; start += batch)
        {
            using var scope = NewDisposeScope();
            var t = targets.Skip(start).Take(batch).ToArray();
            var s = sources.Skip(start).Take(batch).ToArray();
            using var same = data.Pairs(t, t);
            using var cross = data.Pairs(t, s);
            var input = Apply(same.Target, transform);
            var inputValues = input.contiguous().data<float>().ToArray();
            var (reconOut, _) = swapper.Run(inputValues, same.Source.contiguous().data<float>().ToArray(), t.Length);
            var reconTensor = tensor(reconOut, [t.Length, 3, r, r]);
            // Quality is measured on the image a user gets: pixels clamped to [-1,1] as the pipeline clamps them to
            // 0..255 (a tanh head is inside already; a gated target skip can overshoot). Parity stays on raw outputs.
            var shown = reconTensor.clamp(-1.0, 1.0);
            psnr += ImageMetrics.Psnr(shown, input).sum().item<float>();
            ssim += ImageMetrics.Ssim(shown, input).sum().item<float>();
            if (perceptual is not null) using (no_grad()) perceptualSum += perceptual.Distance(shown, input).sum().item<float>();
            if (reference is not null)
            {
                using (no_grad())
                {
                    var expected = reference.call(new Dictionary<string, Tensor> { [SwapperIO.Target] = input, [SwapperIO.Source] = same.Source })[SwapperIO.Output];
                    parityMse += expected.sub(reconTensor).pow(2).mean([1, 2, 3]).sum().item<float>();
                    maxAbs = Math.Max(maxAbs, expected.sub(reconTensor).abs().max().item<float>());
                }
            }
            if (teacher is not null)
            {
                var (teacherOut, _) = teacher.Run(inputValues, same.Source.contiguous().data<float>().ToArray(), t.Length);
                teacherPsnr += ImageMetrics.Psnr(shown, tensor(teacherOut, [t.Length, 3, r, r]).clamp(-1.0, 1.0)).sum().item<float>();
            }
            var crossInput = Apply(cross.Target, transform);
            var sourceValues = cross.Source.contiguous().data<float>().ToArray();
            var (swapOut, _) = swapper.Run(crossInput.contiguous().data<float>().ToArray(), sourceValues, t.Length);
            var swapTensor = tensor(swapOut, [t.Length, 3, r, r]).clamp(-1.0, 1.0);
            for (int i = 0; i < t.Length; i++)
            {
                var crop112 = ImageGrid.ToImage(swapTensor[i]).WarpAffine(toEmbedder, IdentityEmbedder.CropSize, IdentityEmbedder.CropSize);
                idCos += IdentityEmbedder.Cosine(embedder.EmbedCrop(crop112), sourceValues.AsSpan(i * 512, 512));
            }
        }
        int n = targets.Length;
        double? parity = reference is null ? null : 10 * Math.Log10(4.0 / Math.Max(parityMse / n, 1e-20));
        return new Quality(n, psnr / n, ssim / n, idCos / n, perceptual is null ? null : perceptualSum / n, parity, reference is null ? null : maxAbs,
            teacher is null ? null : teacherPsnr / n);
    }

    /// <summary>Low light: intensities scaled by 0.35 on [0,1]. Occlusion: a mid-grey box over the mouth and chin.</summary>
    private static Tensor Apply(Tensor images, Transform transform)
    {
        switch (transform)
        {
            case Transform.LowLight:
                return images.add(1).mul(0.35).sub(1);
            case Transform.Occlusion:
            {
                var copy = images.clone();
                long r = images.shape[3];
                copy[TensorIndex.Colon, TensorIndex.Colon, TensorIndex.Slice(r * 62 / 100, r * 90 / 100), TensorIndex.Slice(r * 30 / 100, r * 70 / 100)] = tensor(0f);
                return copy;
            }
            default:
                return images;
        }
    }

    /// <summary>p50 batch-1 latency (ms) of a swapper on a fixed input: warm-up, then <paramref name="runs"/> timed runs.</summary>
    public static double P50Ms(OrtSwapper swapper, int runs = 50)
    {
        int r = swapper.Resolution;
        var target = new float[3 * r * r];
        var source = Enumerable.Repeat(1f / MathF.Sqrt(512), 512).ToArray();
        for (int i = 0; i < 3; i++) swapper.Run(target, source, 1);
        var times = new List<double>();
        for (int i = 0; i < runs; i++)
        {
            var w = Stopwatch.StartNew();
            swapper.Run(target, source, 1);
            times.Add(w.Elapsed.TotalMilliseconds);
        }
        return Percentile(times, 50);
    }

    public static double Percentile(IReadOnlyList<double> values, double p)
    {
        var sorted = values.Order().ToArray();
        double rank = p / 100 * (sorted.Length - 1);
        int lo = (int)Math.Floor(rank), hi = (int)Math.Ceiling(rank);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
    }
}
