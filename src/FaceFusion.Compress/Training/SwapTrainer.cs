using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using FaceFusion.Compress.Assets;
using FaceFusion.Compress.Data;
using FaceFusion.Compress.Distillation;
using FaceFusion.Compress.Quantization;
using FaceFusion.Compress.Models.Architectures;
using FaceFusion.Compress.Models.Checkpoints;
using FaceFusion.Compress.Models.Graph;
using FaceFusion.Compress.Models.Networks;
using FaceFusion.Compress.Reporting;
using TorchSharp;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Training;

/// <summary>Progress of a training run, reported after every step.</summary>
public readonly record struct TrainProgress(long Step, long TotalSteps, int Resolution, double ImagesPerSecond, IReadOnlyDictionary<string, double> Losses);

/// <summary>Held-out quality of a swapper: same-identity reconstruction and cross-identity identity transfer.</summary>
public sealed record SwapMetrics(string Model, int Pairs, double ReconstructionPsnr, double ReconstructionSsim, double IdentityCosine, double SourceTargetCosine);

/// <summary>
/// Trains a swapper (teacher or student from scratch) with reconstruction, SSIM, identity, perceptual, adversarial,
/// feature-matching, mask and background losses, progressive resolution, checkpoints that resume bit-for-bit in
/// sampling, a CSV log, TensorBoard events and sample grids. Disposes what it creates.
/// </summary>
public sealed class SwapTrainer
{
    public static readonly string[] LossNames =
        ["reconstruction", "ssim", "identity", "perceptual", "adversarial", "feature_matching", "mask", "background", "discriminator"];

    /// <summary>Terms added when distilling from a teacher.</summary>
    public static readonly string[] DistillLossNames =
        ["distill_pixel", "distill_mask", "distill_cwd", "distill_feature_mse", "distill_perceptual", "distill_identity", "illumination"];

    /// <summary>Terms added when cross pairs have pseudo targets (<see cref="TrainConfig.PseudoTargetNeighbours"/>).</summary>
    public static readonly string[] CrossLossNames = ["cross_reconstruction", "cross_perceptual"];

    public static IReadOnlyList<string> LogColumns =>
        new[] { "step", "epoch", "resolution", "lr", "loss_total", "images_per_s" }.Concat(LossNames.Select(n => "loss_" + n)).ToList();

    /// <summary>This run's columns: <see cref="LogColumns"/>, plus the distillation terms when a teacher is set.</summary>
    public IReadOnlyList<string> Columns => LogColumns.Concat(ExtraLossNames.Select(n => "loss_" + n)).ToList();
    private IEnumerable<string> ExtraLossNames =>
        (_config.Teacher is null ? [] : DistillLossNames).Concat(_config.PseudoTargetNeighbours > 0 ? CrossLossNames : []);
    private IEnumerable<string> AllLossNames => LossNames.Concat(ExtraLossNames);

    private ITeacher? _teacher;

    /// <summary>
    /// Test hook, null in every real run: called each step with the loss terms before they are weighted and summed
    /// (their graphs alive), the generator, the parameters of the frozen networks (identity, perceptual, a checkpoint
    /// teacher's) and the teacher's output. The tensors belong to the step's dispose scope.
    /// </summary>
    internal Action<IReadOnlyDictionary<string, (double Weight, Tensor Value)>, GraphModule, IReadOnlyList<TorchSharp.Modules.Parameter>, Tensor?>? TermProbe { get; set; }
    private FeatureAdapters? _adapters;
    private QuantSimulator? _quantization;

    private readonly TrainConfig _config;
    private readonly AssetPaths _assets;
    private readonly string _root;

    /// <param name="config">The configuration; relative paths are resolved against <paramref name="root"/>.</param>
    /// <param name="assets">The imported identity, perceptual and landmark networks (the trainer loads what the losses need).</param>
    /// <param name="root">The repository root.</param>
    public SwapTrainer(TrainConfig config, AssetPaths assets, string root)
    {
        _config = config;
        _assets = assets;
        _root = root;
    }

    private string Resolve(string path) => Path.IsPathRooted(path) ? path : Path.GetFullPath(Path.Combine(_root, path));
    public string OutputDir => Resolve(_config.Output);
    public string CheckpointsDir => Path.Combine(OutputDir, "checkpoints");
    public string ModelDir => Path.Combine(OutputDir, "model");

    /// <summary>The latest checkpoint folder, or null.</summary>
    public string? LatestCheckpoint()
    {
        var pointer = Path.Combine(CheckpointsDir, "latest");
        if (!File.Exists(pointer)) return null;
        var dir = Path.Combine(CheckpointsDir, File.ReadAllText(pointer).Trim());
        return File.Exists(Path.Combine(dir, "state.json")) ? dir : null;
    }

    /// <summary>
    /// Runs training to the configured number of steps (or <paramref name="stopAfter"/> steps of this call), then
    /// evaluates and writes the model. Returns the final step reached.
    /// </summary>
    public long Train(bool resume, IProgress<TrainProgress>? progress = null, long? stopAfter = null, CancellationToken cancel = default)
    {
        var c = _config;
        if (c.Threads > 0) torch.set_num_threads(c.Threads);
        var latest = LatestCheckpoint();
        if (latest is not null && !resume)
            throw new InvalidOperationException($"{OutputDir}: holds a checkpoint from an earlier run; pass --resume to continue it, or choose another output");
        Directory.CreateDirectory(OutputDir);
        AtomicFile.WriteAllText(Path.Combine(OutputDir, "config.yaml"), c.ToYaml());

        torch.manual_seed(c.Seed);
        using var generator = BuildGenerator(latest is not null && resume);
        using var quantization = _quantization;
        using var discriminator = new GraphModule(Discriminator.Build(c.Resolution));
        var taps = Discriminator.FeatureTaps(discriminator.Graph).ToList();
        var pairs = c.Distill.FeaturePairs.Select(FeaturePair.Parse).ToList();
        using var teacher = c.Teacher is null ? null : Teachers.Open(Resolve(c.Teacher), pairs.Select(p => p.Teacher).ToList(), c.TeacherPixelRange == "zero_one");
        _teacher = teacher;
        using var adapters = teacher is null ? null : BuildAdapters(generator, teacher, pairs);
        _adapters = adapters;
        var trainable = generator.parameters().Concat(adapters?.parameters() ?? []).Concat(quantization?.parameters() ?? []);
        using var optG = optim.Adam(trainable, c.Optimizer.Lr, c.Optimizer.Beta1, c.Optimizer.Beta2);
        using var optD = optim.Adam(discriminator.parameters(), c.Optimizer.DiscriminatorLr, c.Optimizer.Beta1, c.Optimizer.Beta2);
        long step = 0;
        if (resume && latest is not null)
        {
            step = LoadCheckpoint(latest, generator, discriminator, optG, optD);
        }
        using var identity = c.IdentityEmbedder is { } embedderPath
            ? new IdentityNetwork(Resolve(embedderPath), c.IdentityEmbedderNormalization)
            : new IdentityNetwork(_assets.IdentityEmbedder);
        using var perceptual = c.VggWeights is { } vgg
            ? PerceptualNetwork.Vgg(c.VggKind, Resolve(vgg))
            : PerceptualNetwork.ResNet18(_assets.ResNet18, _assets.ResNetPreprocess);

        long total = c.TotalSteps;
        long end = stopAfter is long s ? Math.Min(total, step + s) : total;
        long resumedAt = step;
        using var log = new CsvLog(Path.Combine(OutputDir, "train_log.csv"), Columns,
            keep => long.TryParse(keep, NumberStyles.Integer, CultureInfo.InvariantCulture, out var st) && st <= resumedAt);
        var board = torch.utils.tensorboard.SummaryWriter(Path.Combine(OutputDir, "tensorboard"));
        AtomicFile.AppendAllText(Path.Combine(OutputDir, "train.log"),
            $"{DateTime.UtcNow:o} {(resumedAt > 0 ? $"resumed at step {resumedAt}" : "started")}; perceptual network: {perceptual.Kind}; threads {torch.get_num_threads()}{(teacher is null ? "" : $"; teacher: {teacher.Description}")}\n");

        FaceSwapData? data = null;
        var watch = Stopwatch.StartNew();
        int nonFinite = 0;
        bool rolledBack = false;
        long imagesSince = 0;
        try
        {
            while (step < end)
            {
                cancel.ThrowIfCancellationRequested();
                var phase = c.PhaseAt(step);
                if (data is null || data.Resolution != phase.Resolution)
                {
                    data?.Dispose();
                    data = new FaceSwapData(Resolve(c.Data), Splits.Train, phase.Resolution, c.TrainLimit) { PseudoTargetNeighbours = c.PseudoTargetNeighbours };
                    if (c.IdentityEmbedder is not null) data.SourceEmbedder = images => identity.call(images);
                }
                if (quantization is not null) quantization.Observing = !quantization.LearnableScales && step < c.Qat!.FreezeObserversAfter;
                var losses = TrainStep(generator, discriminator, optG, optD, identity, perceptual, data, taps, step, out var sampleColumns, out var skipped);
                if (skipped is not null)
                {
                    nonFinite++;
                    AtomicFile.AppendAllText(Path.Combine(OutputDir, "train.log"), $"{DateTime.UtcNow:o} step {step + 1}: {skipped}; step skipped\n");
                    if (nonFinite >= c.MaxNonFiniteSteps)
                    {
                        var last = LatestCheckpoint();
                        if (rolledBack || last is null)
                            throw new InvalidOperationException($"{OutputDir}: {nonFinite} non-finite steps in a row at step {step + 1}{(rolledBack ? " after a rollback with halved learning rates" : " and no checkpoint to roll back to")}; lower optimizer.lr and resume");
                        step = LoadCheckpoint(last, generator, discriminator, optG, optD);
                        foreach (var group in optG.ParamGroups.Concat(optD.ParamGroups)) group.LearningRate *= 0.5;
                        AtomicFile.AppendAllText(Path.Combine(OutputDir, "train.log"), $"{DateTime.UtcNow:o} rolled back to {Path.GetFileName(last)} (step {step}) with halved learning rates\n");
                        rolledBack = true;
                        nonFinite = 0;
                        foreach (var t in sampleColumns) t.Dispose();
                        continue;
                    }
                }
                else nonFinite = 0;
                step++;
                imagesSince += c.BatchSize;
                double ips = imagesSince / Math.Max(1e-6, watch.Elapsed.TotalSeconds);
                var row = new Dictionary<string, double>
                {
                    ["step"] = step, ["epoch"] = (double)step * c.BatchSize / data.Count, ["resolution"] = phase.Resolution,
                    ["lr"] = c.Optimizer.Lr, ["loss_total"] = losses["total"], ["images_per_s"] = ips,
                };
                foreach (var n in AllLossNames) row["loss_" + n] = losses[n];
                log.Write(row);
                foreach (var (name, value) in losses) board.add_scalar($"loss/{name}", (float)value, (int)step);
                board.add_scalar("images_per_s", (float)ips, (int)step);
                progress?.Report(new TrainProgress(step, total, phase.Resolution, ips, losses));

                if (step % c.SampleEvery == 0 || step == total)
                    ImageGrid.Rows(sampleColumns).SavePng(Path.Combine(OutputDir, "samples", $"step-{step:D6}.png"));
                foreach (var t in sampleColumns) t.Dispose();
                if (step % c.CheckpointEvery == 0 || step == end)
                    SaveCheckpoint(step, generator, discriminator, optG, optD);
            }
        }
        finally
        {
            data?.Dispose();
        }

        if (step >= total)
        {
            var metrics = Evaluate(generator, identity);
            generator.eval();
            Checkpoint.Save(ModelDir, generator, new Dictionary<string, string> { ["trained_steps"] = step.ToString(CultureInfo.InvariantCulture) });
            if (quantization is not null) WriteAtomic(Path.Combine(ModelDir, QuantizationAware.FileName), quantization.ToJson());
            AtomicFile.WriteAllText(Path.Combine(ModelDir, "metrics.json"), JsonSerializer.Serialize(metrics, new JsonSerializerOptions { WriteIndented = true }));
        }
        return step;
    }

    private Dictionary<string, double> TrainStep(GraphModule generator, GraphModule discriminator, TorchSharp.Modules.OptimizerHelper optG, TorchSharp.Modules.OptimizerHelper optD,
        IdentityNetwork identity, PerceptualNetwork perceptual, FaceSwapData data, List<string> taps, long step, out List<Tensor> samples, out string? skipped)
    {
        skipped = null;
        var c = _config;
        var w = c.LossWeights;
        using var scope = NewDisposeScope();
        generator.train();
        discriminator.train();
        using var batch = data.Sample(c.BatchSize, c.SameIdentityFraction, c.Seed, step);
        // One forward; when distilling features, the student's paired nodes are tapped in the same pass.
        var studentTaps = _adapters?.Pairs.Select(p => p.Student).ToList() ?? [];
        var outputs = generator.Run(new Dictionary<string, Tensor> { [SwapperIO.Target] = batch.Target, [SwapperIO.Source] = batch.Source }, studentTaps);
        var fake = outputs[SwapperIO.Output];
        var mask = outputs[SwapperIO.Mask];
        bool adversarial = step >= c.AdversarialStartStep && (w.Adversarial > 0 || w.FeatureMatching > 0);
        var losses = AllLossNames.ToDictionary(n => n, _ => 0.0);

        if (adversarial)
        {
            optD.zero_grad();
            var real = discriminator.call(new Dictionary<string, Tensor> { ["image"] = batch.Target });
            var fakeD = discriminator.call(new Dictionary<string, Tensor> { ["image"] = fake.detach() });
            Tensor lossD = zeros(1);
            foreach (var key in real.Keys)
                lossD = lossD.add(nn.functional.relu(real[key].neg().add(1)).mean()).add(nn.functional.relu(fakeD[key].add(1)).mean());
            lossD.backward();
            optD.step();
            losses["discriminator"] = lossD.item<float>();
        }

        optG.zero_grad();
        var same = batch.Same;
        var sameCount = same.sum().clamp_min(1);
        Tensor SameMean(Tensor perSample) => perSample.mul(same).sum().div(sameCount);
        var terms = new Dictionary<string, (double Weight, Tensor Value)>
        {
            ["reconstruction"] = (w.Reconstruction, SameMean(fake.sub(batch.Target).abs().mean([1, 2, 3]))),
            ["ssim"] = (w.Ssim, SameMean(ImageMetrics.Ssim(fake, batch.Target).neg().add(1))),
            ["identity"] = (w.Identity, nn.functional.cosine_similarity(identity.call(c.IdentityAugment ? IdentityAugmentation.Apply(fake, AugmentationRandom(step)) : fake), batch.Source, 1).neg().add(1).mean()),
            ["mask"] = (w.Mask, nn.functional.binary_cross_entropy(mask.clamp(1e-6, 1 - 1e-6), batch.FaceMask)),
            ["background"] = (w.Background, fake.sub(batch.Target).abs().mul(batch.FaceMask.neg().add(1)).mean()),
        };
        if (w.Perceptual > 0 && batch.PseudoTarget is null) terms["perceptual"] = (w.Perceptual, SameMean(perceptual.Distance(fake, batch.Target)));
        if (batch.PseudoTarget is { } pseudo)
        {
            var cross = same.neg().add(1);
            var crossCount = cross.sum().clamp_min(1);
            Tensor CrossMean(Tensor perSample) => perSample.mul(cross).sum().div(crossCount);
            // The pseudo target's face in the target's surroundings: the output must keep the target's hair and background.
            var composite = PseudoTargetComposite.Compose(pseudo, batch.Target, batch.FaceMask, c.PseudoTargetFeather, c.PseudoTargetColorMatch);
            var quarter = nn.functional.avg_pool2d(fake, 4, 4).sub(nn.functional.avg_pool2d(composite, 4, 4)).abs().mean([1, 2, 3]);
            terms["cross_reconstruction"] = (w.CrossReconstruction, CrossMean(quarter));
            // One perceptual pass for both kinds of pair (it is the step's costliest network): the target is the
            // reference of a same-identity pair, the composite of a cross pair.
            if (w.Perceptual > 0 || w.CrossPerceptual > 0)
            {
                var reference = where(same.view(-1, 1, 1, 1).gt(0), batch.Target, composite);
                var distance = perceptual.Distance(fake, reference);
                terms["perceptual"] = (w.Perceptual, SameMean(distance));
                terms["cross_perceptual"] = (w.CrossPerceptual, CrossMean(distance));
            }
            else terms["cross_perceptual"] = (0, zeros(1));
        }
        if (adversarial)
        {
            var fakeOut = discriminator.Run(new Dictionary<string, Tensor> { ["image"] = fake }, taps);
            Tensor adv = zeros(1);
            foreach (var key in discriminator.Graph.Outputs.Select(o => o.Name)) adv = adv.add(fakeOut[key].mean().neg());
            terms["adversarial"] = (w.Adversarial, adv);
            // Real features are targets only: no graph through them.
            Dictionary<string, Tensor> realOut;
            using (no_grad()) realOut = discriminator.Run(new Dictionary<string, Tensor> { ["image"] = batch.Target }, taps);
            Tensor fm = zeros(1);
            foreach (var tap in taps) fm = fm.add(fakeOut[tap].sub(realOut[tap]).abs().mean());
            terms["feature_matching"] = (w.FeatureMatching, fm.div(taps.Count));
        }
        Tensor? teacherOutput = null;
        if (_teacher is not null) teacherOutput = AddDistillationTerms(terms, outputs, identity, perceptual, batch, fake, mask);
        TermProbe?.Invoke(terms, generator,
            identity.parameters().Concat(perceptual.parameters()).Concat((_teacher as CheckpointTeacher)?.Parameters() ?? []).ToList(), teacherOutput);
        Tensor total = zeros(1);
        foreach (var (name, (weight, value)) in terms)
        {
            if (weight != 0) total = total.add(value.mul(weight));
            losses[name] = value.item<float>();
        }
        if (c.FaultNanSteps.Contains(step + 1)) total = total.mul(float.NaN);
        losses["total"] = total.item<float>();
        samples = [batch.Target.detach().MoveToOuterDisposeScope(), batch.SourceImage.detach().MoveToOuterDisposeScope()];
        if (batch.PseudoTarget is not null) samples.Add(batch.PseudoTarget.detach().MoveToOuterDisposeScope());
        if (teacherOutput is not null) samples.Add(teacherOutput.detach().MoveToOuterDisposeScope());
        samples.Add(fake.detach().MoveToOuterDisposeScope());
        samples.Add(mask.detach().expand(-1, 3, -1, -1).mul(2).sub(1).MoveToOuterDisposeScope());
        if (!double.IsFinite(losses["total"]))
        {
            skipped = $"non-finite loss (targets {string.Join(",", batch.TargetIndices)}, sources {string.Join(",", batch.SourceIndices)})";
            return losses;
        }
        total.backward();
        double gradNorm = nn.utils.clip_grad_norm_(generator.parameters(), 1e30); // measures the norm; never clips
        if (!double.IsFinite(gradNorm))
        {
            skipped = $"non-finite gradient (targets {string.Join(",", batch.TargetIndices)}, sources {string.Join(",", batch.SourceIndices)})";
            optG.zero_grad();
            return losses;
        }
        optG.step();
        return losses;
    }

    /// <summary>The identity augmentation's random stream for a step: a function of (seed, step), so resumes draw the same views.</summary>
    private Random AugmentationRandom(long step) => new(unchecked((int)((ulong)(_config.Seed * 7_000_003L + step) * 0xD6E8FEB86659FD93UL >> 33)));

    /// <summary>Adds the distillation terms; returns the teacher's output (at the batch's resolution).</summary>
    private Tensor AddDistillationTerms(Dictionary<string, (double Weight, Tensor Value)> terms, Dictionary<string, Tensor> studentFeatures, IdentityNetwork identity,
        PerceptualNetwork perceptual, SwapBatch batch, Tensor fake, Tensor mask)
    {
        var d = _config.Distill;
        int r = (int)batch.Target.shape[3];
        var teacher = _teacher!;
        Tensor Resize(Tensor x, long size) => x.shape[^1] == size ? x : nn.functional.interpolate(x, size: [size, size], mode: InterpolationMode.Bilinear, align_corners: false);
        var pairs = _adapters!.Pairs;
        var result = teacher.Run(Resize(batch.Target, teacher.Resolution), batch.Source, pairs.Select(p => p.Teacher).ToList());
        var tOut = Resize(result.Output, r);
        var weight = batch.RegionMask.mul(d.RegionWeight).add(1);
        terms["distill_pixel"] = (d.Pixel, fake.sub(tOut).abs().mul(weight).mean());
        terms["distill_mask"] = (result.Mask is null ? 0 : d.Mask, result.Mask is null ? zeros(1) : mask.sub(Resize(result.Mask, r)).abs().mean());
        var perceptualWeight = d.PerceptualRegionWeight > 0 ? batch.RegionMask.mul(d.PerceptualRegionWeight).add(1) : null;
        terms["distill_perceptual"] = (d.Perceptual, d.Perceptual > 0 ? perceptual.Distance(fake, tOut, perceptualWeight).mean() : zeros(1));
        terms["distill_identity"] = (d.IdentityTeacher, d.IdentityTeacher > 0 ? nn.functional.cosine_similarity(identity.call(fake), identity.call(tOut), 1).neg().add(1).mean() : zeros(1));
        terms["illumination"] = (d.Illumination, DistillationLosses.Illumination(fake, d.IlluminationReference == "target" ? batch.Target : tOut, batch.FaceMask));
        Tensor cwd = zeros(1), mse = zeros(1);
        if (pairs.Count > 0)
        {
            for (int i = 0; i < pairs.Count; i++)
            {
                var t = result.Features[pairs[i].Teacher];
                var s = _adapters.call(i, studentFeatures[pairs[i].Student]);
                if (s.shape[^1] != t.shape[^1]) s = nn.functional.interpolate(s, size: [t.shape[2], t.shape[3]], mode: InterpolationMode.Bilinear, align_corners: false);
                cwd = cwd.add(DistillationLosses.ChannelWise(s, t, d.Tau));
                mse = mse.add(s.sub(t).pow(2).mean());
            }
            cwd = cwd.div(pairs.Count);
            mse = mse.div(pairs.Count);
        }
        terms["distill_cwd"] = (d.Cwd, cwd);
        terms["distill_feature_mse"] = (d.FeatureMse, mse);
        return tOut;
    }

    private FeatureAdapters BuildAdapters(GraphModule generator, ITeacher teacher, List<(string Student, string Teacher)> pairs)
    {
        if (pairs.Count == 0) return new FeatureAdapters([]);
        var studentShapes = ShapeInference.Infer(generator.Graph, generator.Graph.Resolution);
        using var scope = NewDisposeScope();
        int r = teacher.Resolution;
        var probe = teacher.Run(zeros(1, 3, r, r), nn.functional.normalize(ones(1, 512), dim: 1), pairs.Select(p => p.Teacher).ToList());
        var resolved = pairs.Select(p =>
        {
            if (!studentShapes.TryGetValue(p.Student, out var shape))
                throw new InvalidDataException($"feature pair '{p.Student}={p.Teacher}': the student has no node '{p.Student}'");
            var t = probe.Features[p.Teacher];
            if (t.dim() != 4) throw new InvalidDataException($"feature pair '{p.Student}={p.Teacher}': the teacher tensor must be a feature map [N,C,H,W]");
            return new FeaturePair(p.Student, p.Teacher, shape.Channels, (int)t.shape[1]);
        }).ToList();
        torch.manual_seed(_config.Seed + 7);
        return new FeatureAdapters(resolved);
    }

    private void SaveCheckpoint(long step, GraphModule generator, GraphModule discriminator, TorchSharp.Modules.OptimizerHelper optG, TorchSharp.Modules.OptimizerHelper optD)
    {
        var name = $"step-{step:D6}";
        var final = Path.Combine(CheckpointsDir, name);
        var staging = final + ".partial";
        // Fixed names inside the run's own checkpoints folder; DeleteChild refuses links planted there.
        OwnedFolder.DeleteChild(CheckpointsDir, name + ".partial");
        Directory.CreateDirectory(staging);
        Checkpoint.Save(staging, generator);
        SafeTensors.Save(Path.Combine(staging, "discriminator.safetensors"), discriminator.state_dict());
        if (_adapters is not null) SafeTensors.Save(Path.Combine(staging, "adapters.safetensors"), _adapters.state_dict());
        if (_quantization is not null) SafeTensors.Save(Path.Combine(staging, "quantization.safetensors"), _quantization.state_dict());
        optG.save_state_dict(Path.Combine(staging, "optimizer_g.bin"));
        optD.save_state_dict(Path.Combine(staging, "optimizer_d.bin"));
        File.WriteAllText(Path.Combine(staging, "state.json"), JsonSerializer.Serialize(new { step, seed = _config.Seed }));
        OwnedFolder.DeleteChild(CheckpointsDir, name);
        Directory.Move(staging, final);
        var pointer = Path.Combine(CheckpointsDir, "latest");
        AtomicFile.WriteAllText(pointer, name);
        foreach (var old in Directory.GetDirectories(CheckpointsDir, "step-*").Where(d => !d.EndsWith(".partial")).Order().SkipLast(_config.KeepCheckpoints))
            OwnedFolder.DeleteChild(CheckpointsDir, Path.GetFileName(old));
    }

    /// <summary>
    /// The generator to train: the configured architecture or checkpoint; for QAT, BatchNorm-folded with a
    /// <see cref="QuantSimulator"/> attached (calibrated on train images unless a checkpoint will supply the ranges).
    /// </summary>
    private GraphModule BuildGenerator(bool resuming)
    {
        var c = _config;
        var graph = Directory.Exists(Resolve(c.Model)) ? Checkpoint.LoadGraph(Resolve(c.Model)) : SwapperArchitectures.Build(c.Model, c.Resolution);
        var model = new GraphModule(graph with { Metadata = EmbedderMetadata(graph.Metadata) });
        try
        {
            if (Directory.Exists(Resolve(c.Model))) Checkpoint.LoadWeights(model, Path.Combine(Resolve(c.Model), Checkpoint.WeightsFile));
            if (c.Qat is null) return model;
            // The policy is decided once (calibration, sensitivity mode) and kept in the output folder for resumes.
            var policyPath = Path.Combine(OutputDir, QuantizationAware.FileName);
            QuantPolicy? resumed = null;
            if (resuming)
            {
                if (!File.Exists(policyPath)) throw new InvalidDataException($"{OutputDir}: resuming QAT needs {QuantizationAware.FileName}, which is missing");
                resumed = QuantSimulator.ReadJson(File.ReadAllText(policyPath), policyPath).Policy;
            }
            var prepared = QuantizationAware.Prepare(model, c.Qat, Resolve(c.Data), c.Seed, resumed);
            model.Dispose();
            _quantization = prepared.Simulator;
            if (!resuming)
            {
                WriteAtomic(policyPath, prepared.Simulator.ToJson());
                if (prepared.Sensitivity is { } rows) QuantAnalysis.WriteSensitivity(OutputDir, rows);
            }
            return prepared.Model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Records which identity embedder the model is trained for, and what that means for FaceFusion.</summary>
    private Dictionary<string, string> EmbedderMetadata(IReadOnlyDictionary<string, string> existing)
    {
        var meta = existing.ToDictionary(kv => kv.Key, kv => kv.Value);
        if (_config.IdentityEmbedder is { } path)
        {
            var full = Resolve(path);
            var sha = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(full))).ToLowerInvariant()[..16];
            meta["embedder"] = $"{Path.GetFileName(full)} (sha256 {sha}, {_config.IdentityEmbedderNormalization} normalisation, arcface_112_v2)";
            meta["facefusion_compatibility"] = $"drop-in when FaceFusion feeds it embeddings of {Path.GetFileName(full)} (the recogniser it was trained with)";
        }
        else if (!meta.ContainsKey("facefusion_compatibility"))
            meta["facefusion_compatibility"] = SwapperIO.DefaultCompatibility;
        return meta;
    }

    private static void WriteAtomic(string path, string text)
    {
        AtomicFile.WriteAllText(path, text);
    }

    private long LoadCheckpoint(string dir, GraphModule generator, GraphModule discriminator, TorchSharp.Modules.OptimizerHelper optG, TorchSharp.Modules.OptimizerHelper optD)
    {
        Checkpoint.LoadWeights(generator, Path.Combine(dir, Checkpoint.WeightsFile));
        var tensors = SafeTensors.Load(Path.Combine(dir, "discriminator.safetensors"), out _);
        using (no_grad())
            foreach (var (name, target) in discriminator.state_dict()) target.copy_(tensors[name]);
        foreach (var t in tensors.Values) t.Dispose();
        if (_adapters is not null && File.Exists(Path.Combine(dir, "adapters.safetensors")))
        {
            var adapterTensors = SafeTensors.Load(Path.Combine(dir, "adapters.safetensors"), out _);
            using (no_grad())
                foreach (var (name, target) in _adapters.state_dict()) target.copy_(adapterTensors[name]);
            foreach (var t in adapterTensors.Values) t.Dispose();
        }
        if (_quantization is not null)
        {
            var path = Path.Combine(dir, "quantization.safetensors");
            if (!File.Exists(path)) throw new InvalidDataException($"{dir}: a QAT checkpoint without quantization.safetensors");
            var quantTensors = SafeTensors.Load(path, out _);
            using (no_grad())
                foreach (var (name, target) in _quantization.state_dict())
                    target.copy_(quantTensors.TryGetValue(name, out var t) ? t : throw new InvalidDataException($"{path}: no '{name}' (the QAT policy changed since this checkpoint)"));
            foreach (var t in quantTensors.Values) t.Dispose();
        }
        // A checkpoint carried between machines in git holds the weights only (the Adam moments are twice the model's
        // size): the run continues from the weights with fresh moments, and says so in train.log.
        var optimizerFiles = new[] { "optimizer_g.bin", "optimizer_d.bin" }.Select(f => Path.Combine(dir, f)).ToArray();
        if (optimizerFiles.All(File.Exists))
        {
            optG.load_state_dict(optimizerFiles[0]);
            optD.load_state_dict(optimizerFiles[1]);
        }
        else if (optimizerFiles.Any(File.Exists))
            throw new InvalidDataException($"{dir}: holds only one of optimizer_g.bin and optimizer_d.bin");
        else
            AtomicFile.AppendAllText(Path.Combine(OutputDir, "train.log"), $"{DateTime.UtcNow:o} {dir}: no optimizer state (a weights-only checkpoint); Adam moments start fresh\n");
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "state.json")));
        return doc.RootElement.GetProperty("step").GetInt64();
    }

    /// <summary>Evaluates a generator on the configured split, plus the untrained and copy-the-target baselines.</summary>
    public List<SwapMetrics> Evaluate(GraphModule generator, IdentityNetwork identity)
    {
        var c = _config;
        using var data = new FaceSwapData(Resolve(c.Data), c.EvalSplit, c.Resolution);
        if (c.IdentityEmbedder is not null) data.SourceEmbedder = images => identity.call(images);
        var (targets, sources) = EvaluationPairs(data, c.EvalPairs, c.Seed);
        torch.manual_seed(c.Seed + 1);
        using var untrained = new GraphModule(generator.Graph);
        return
        [
            SwapEvaluation.Measure("trained", x => Run(generator, x), data, targets, sources, identity),
            SwapEvaluation.Measure("untrained", x => Run(untrained, x), data, targets, sources, identity),
            SwapEvaluation.Measure("copy_target", x => x.Target.alias(), data, targets, sources, identity),
        ];
    }

    private static Tensor Run(GraphModule model, SwapBatch batch)
    {
        model.eval();
        return model.call(new Dictionary<string, Tensor> { [SwapperIO.Target] = batch.Target, [SwapperIO.Source] = batch.Source })[SwapperIO.Output];
    }

    /// <summary>Deterministic evaluation pairs: each target once with itself and once with a face of another identity.</summary>
    public static (int[] Targets, int[] Sources) EvaluationPairs(FaceSwapData data, int pairs, int seed)
    {
        var rng = new Random(seed);
        var targets = Enumerable.Range(0, data.Count).OrderBy(_ => rng.Next()).Take(Math.Min(pairs, data.Count)).ToArray();
        var sources = targets.Select(t =>
        {
            var others = Enumerable.Range(0, data.IdentityCount).Where(i => i != data.IdentityOf(t)).ToList();
            if (others.Count == 0) return t;
            var pool = data.FacesOf(others[rng.Next(others.Count)]);
            return pool[rng.Next(pool.Count)];
        }).ToArray();
        return (targets, sources);
    }
}

/// <summary>Same-identity reconstruction PSNR/SSIM and cross-identity identity cosine of a swap function.</summary>
public static class SwapEvaluation
{
    public static SwapMetrics Measure(string name, Func<SwapBatch, Tensor> swap, FaceSwapData data, int[] targets, int[] crossSources, IdentityNetwork identity, int batchSize = 16)
    {
        double psnr = 0, ssim = 0, idCos = 0, baseCos = 0;
        using (no_grad())
        {
            for (int start = 0; start < targets.Length; start += batchSize)
            {
                using var scope = NewDisposeScope();
                var t = targets.Skip(start).Take(batchSize).ToArray();
                var s = crossSources.Skip(start).Take(batchSize).ToArray();
                using var sameBatch = data.Pairs(t, t);
                // Measured on the image a user gets (pixels clamped as the pipeline clamps them; tanh heads are inside
                // already, a gated target skip can overshoot), as `ffc bench` measures it.
                var recon = swap(sameBatch).clamp(-1.0, 1.0);
                psnr += ImageMetrics.Psnr(recon, sameBatch.Target).sum().item<float>();
                ssim += ImageMetrics.Ssim(recon, sameBatch.Target).sum().item<float>();
                using var crossBatch = data.Pairs(t, s);
                var swapped = swap(crossBatch).clamp(-1.0, 1.0);
                idCos += nn.functional.cosine_similarity(identity.call(swapped), crossBatch.Source, 1).sum().item<float>();
                baseCos += nn.functional.cosine_similarity(identity.call(crossBatch.Target), crossBatch.Source, 1).sum().item<float>();
            }
        }
        int n = targets.Length;
        return new SwapMetrics(name, n, psnr / n, ssim / n, idCos / n, baseCos / n);
    }
}
