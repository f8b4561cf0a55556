using System.Globalization;
using FaceFusion.Compress.Assets;
using FaceFusion.Compress.Data;
using FaceFusion.Compress.Models.Architectures;
using FaceFusion.Compress.Models.Checkpoints;
using FaceFusion.Compress.Models.Networks;
using FaceFusion.Compress.Training;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Distillation;

/// <summary>One distillation run of the ablation: the term removed (or "none") and what the student reached.</summary>
public sealed record AblationRow(string Removed, double PsnrDb, double Ssim, double IdentityCosine, double PsnrVsTeacherDb);

/// <summary>
/// The distillation loss ablation: the same distillation (config, seed, steps) run once with every term and once
/// with each term removed (its weight set to 0), each evaluated on the same pairs — reconstruction PSNR/SSIM against
/// the truth, identity cosine to the source, PSNR against the teacher's outputs — so users see what each term buys.
/// </summary>
public static class LossAblation
{
    public static readonly string[] Columns = ["removed", "psnr_db", "ssim", "id_cosine", "psnr_vs_teacher_db"];

    /// <summary>The terms that can be removed, and how to remove each from a config.</summary>
    public static readonly IReadOnlyDictionary<string, Action<TrainConfig>> Terms = new Dictionary<string, Action<TrainConfig>>
    {
        ["pixel"] = c => { c.Distill.Pixel = 0; c.Distill.Mask = 0; },
        ["cwd"] = c => { c.Distill.Cwd = 0; c.Distill.FeatureMse = 0; },
        ["perceptual"] = c => c.Distill.Perceptual = 0,
        ["identity"] = c => { c.LossWeights.Identity = 0; c.Distill.IdentityTeacher = 0; },
        ["adversarial"] = c => { c.LossWeights.Adversarial = 0; c.LossWeights.FeatureMatching = 0; },
        ["illumination"] = c => c.Distill.Illumination = 0,
    };

    /// <summary>
    /// Runs the baseline and one run per term in <paramref name="terms"/> under <paramref name="outputDir"/>/&lt;term&gt;
    /// (each resumable), then evaluates them on <paramref name="split"/>. <paramref name="makeConfig"/> gives a fresh
    /// config (teacher, student, steps, data) for each run. With <paramref name="seeds"/> &gt; 1 the baseline is also
    /// trained with the next seeds (rows and folders <c>none-seed&lt;k&gt;</c>): the spread of those runs is the noise
    /// a term's difference must exceed to mean anything. Every run is evaluated on the same pairs (the first config's
    /// seed picks them), so seeds change the training only.
    /// </summary>
    public static List<AblationRow> Run(Func<TrainConfig> makeConfig, IReadOnlyList<string> terms, string outputDir, AssetPaths assets, string root,
        string split = Splits.Val, IProgress<string>? progress = null, int seeds = 1)
    {
        foreach (var term in terms)
            if (!Terms.ContainsKey(term)) throw new ArgumentException($"unknown loss term '{term}' (known: {string.Join(", ", Terms.Keys)})");
        if (seeds < 1) throw new ArgumentException("seeds must be at least 1");
        int evaluationSeed = makeConfig().Seed;
        var runs = new List<(string Name, string Removed, int SeedOffset)> { ("none", "none", 0) };
        runs.AddRange(Enumerable.Range(1, seeds - 1).Select(k => ($"none-seed{evaluationSeed + k}", "none", k)));
        runs.AddRange(terms.Select(t => (t, t, 0)));
        var rows = new List<AblationRow>();
        foreach (var (name, removed, seedOffset) in runs)
        {
            var config = makeConfig();
            if (config.Teacher is null) throw new ArgumentException("the ablation distils: the config needs a teacher");
            if (removed != "none") Terms[removed](config);
            config.Seed += seedOffset;
            config.Output = Path.Combine(outputDir, name);
            config.EvalSplit = split;
            progress?.Report($"training {(removed == "none" ? "with every term" : $"without {removed}")}{(seedOffset > 0 ? $", seed {config.Seed}" : "")}");
            var trainer = new SwapTrainer(config, assets, root);
            trainer.Train(resume: true);
            rows.Add(Evaluate(name, trainer.ModelDir, config, evaluationSeed, assets, root));
            progress?.Report(string.Create(CultureInfo.InvariantCulture, $"{name}: PSNR {rows[^1].PsnrDb:0.00} dB, vs teacher {rows[^1].PsnrVsTeacherDb:0.00} dB, id {rows[^1].IdentityCosine:0.000}"));
        }
        return rows;
    }

    private static AblationRow Evaluate(string name, string modelDir, TrainConfig config, int evaluationSeed, AssetPaths assets, string root)
    {
        string Resolve(string path) => Path.IsPathRooted(path) ? path : Path.GetFullPath(Path.Combine(root, path));
        using var student = Checkpoint.Load(modelDir);
        student.eval();
        using var teacher = Teachers.Open(Resolve(config.Teacher!), zeroOnePixels: config.TeacherPixelRange == "zero_one");
        // The identity network training used (a config's own embedder, else the bundled one), as the trainer's evaluation.
        using var identity = config.IdentityEmbedder is { } embedder
            ? new IdentityNetwork(Resolve(embedder), config.IdentityEmbedderNormalization)
            : new IdentityNetwork(assets.IdentityEmbedder);
        using var data = new FaceSwapData(Resolve(config.Data), config.EvalSplit, config.Resolution);
        if (config.IdentityEmbedder is not null) data.SourceEmbedder = images => identity.call(images);
        var (targets, sources) = SwapTrainer.EvaluationPairs(data, config.EvalPairs, evaluationSeed);
        Tensor Swap(SwapBatch batch) => student.call(new Dictionary<string, Tensor> { [SwapperIO.Target] = batch.Target, [SwapperIO.Source] = batch.Source })[SwapperIO.Output];
        var metrics = SwapEvaluation.Measure(name, Swap, data, targets, sources, identity);
        static Tensor Resize(Tensor x, long size) => x.shape[^1] == size ? x : nn.functional.interpolate(x, size: [size, size], mode: InterpolationMode.Bilinear, align_corners: false);
        double squared = 0;
        long count = 0;
        using (no_grad())
            for (int start = 0; start < targets.Length; start += 8)
            {
                using var scope = NewDisposeScope();
                using var batch = data.Pairs(targets.Skip(start).Take(8).ToArray(), sources.Skip(start).Take(8).ToArray());
                var output = Swap(batch);
                // As in training: the teacher sees its own resolution, its output is compared at the student's.
                var reference = Resize(teacher.Run(Resize(batch.Target, teacher.Resolution), batch.Source, []).Output, output.shape[^1]);
                squared += output.sub(reference).square().sum().item<float>();
                count += output.numel();
            }
        double vsTeacher = 10 * Math.Log10(4.0 / Math.Max(squared / Math.Max(1, count), 1e-20));
        return new AblationRow(name, metrics.ReconstructionPsnr, metrics.ReconstructionSsim, metrics.IdentityCosine, vsTeacher);
    }

    /// <summary>Writes `ablation.csv` (<see cref="Columns"/>); returns its path.</summary>
    public static string Write(string dir, IReadOnlyList<AblationRow> rows)
    {
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, "ablation.csv");
        string F(double v) => v.ToString("0.####", CultureInfo.InvariantCulture);
        AtomicFile.WriteAllLines(path, rows.Select(r => string.Join(',', r.Removed, F(r.PsnrDb), F(r.Ssim), F(r.IdentityCosine), F(r.PsnrVsTeacherDb))).Prepend(string.Join(',', Columns)));
        return path;
    }
}
