using FaceFusion.Compress.Assets;
using YamlDotNet.Core;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace FaceFusion.Compress.Training;

/// <summary>One resolution phase of progressive training.</summary>
public sealed class TrainPhase
{
    public int Resolution { get; set; }
    public int Steps { get; set; }
}

public sealed class OptimizerConfig
{
    public double Lr { get; set; } = 2e-4;
    public double DiscriminatorLr { get; set; } = 2e-4;
    public double Beta1 { get; set; } = 0.5;
    public double Beta2 { get; set; } = 0.999;
}

/// <summary>Weights of the loss terms; 0 switches a term off.</summary>
public sealed class LossWeights
{
    /// <summary>L1 to the target on same-identity pairs.</summary>
    public double Reconstruction { get; set; } = 10;
    /// <summary>1 − SSIM to the target on same-identity pairs.</summary>
    public double Ssim { get; set; } = 1;
    /// <summary>1 − cos(embed(output), source embedding), all pairs.</summary>
    public double Identity { get; set; } = 5;
    /// <summary>Perceptual-network feature distance to the target on same-identity pairs.</summary>
    public double Perceptual { get; set; } = 1;
    /// <summary>Hinge adversarial loss of the multi-scale PatchGAN.</summary>
    public double Adversarial { get; set; } = 0.1;
    /// <summary>L1 between discriminator features of output and target.</summary>
    public double FeatureMatching { get; set; } = 1;
    /// <summary>BCE of the mask head to the landmark face region.</summary>
    public double Mask { get; set; } = 0.5;
    /// <summary>L1 to the target outside the face region, all pairs (keeps hair, background, clothes).</summary>
    public double Background { get; set; } = 5;
    /// <summary>
    /// Cross pairs (needs <see cref="TrainConfig.PseudoTargetNeighbours"/>): L1 at quarter resolution to the pseudo
    /// target's face pasted into the target (face region from the target's landmarks): the source person in about the
    /// target's pose. Quarter resolution because the pose match is close, not exact.
    /// </summary>
    public double CrossReconstruction { get; set; }
    /// <summary>Cross pairs: perceptual distance to the same composite.</summary>
    public double CrossPerceptual { get; set; }
}

/// <summary>Distillation terms, used when <see cref="TrainConfig.Teacher"/> is set; 0 switches a term off.</summary>
public sealed class DistillConfig
{
    /// <summary>L1 between student and teacher outputs (eyes and mouth weighted by 1 + region_weight).</summary>
    public double Pixel { get; set; } = 10;
    /// <summary>L1 between student and teacher masks (when the teacher has a mask output).</summary>
    public double Mask { get; set; } = 1;
    /// <summary>Channel-wise distillation (τ²·KL of spatial softmaxes) on the feature pairs.</summary>
    public double Cwd { get; set; } = 1;
    /// <summary>Plain MSE on the feature pairs.</summary>
    public double FeatureMse { get; set; }
    /// <summary>Perceptual distance between student and teacher outputs.</summary>
    public double Perceptual { get; set; } = 1;
    /// <summary>1 − cos(embed(student output), embed(teacher output)).</summary>
    public double IdentityTeacher { get; set; }
    /// <summary>Low-frequency colour/brightness of the output matches the reference's in the face region.</summary>
    public double Illumination { get; set; } = 1;
    /// <summary>What the illumination term matches: "teacher" (its output) or "target" (the target face's own lighting).</summary>
    public string IlluminationReference { get; set; } = "teacher";
    public double Tau { get; set; } = 4;
    /// <summary>Extra weight of the eye and mouth regions (from the 68 landmarks) in the pixel term.</summary>
    public double RegionWeight { get; set; } = 2;
    /// <summary>Extra weight of the eye and mouth regions in the perceptual term, applied to each feature stage's
    /// distance map (0: unweighted, as before this key existed).</summary>
    public double PerceptualRegionWeight { get; set; }
    /// <summary>Feature pairs "student_node=teacher_tensor"; 1×1 adapters map channels where counts differ.</summary>
    public List<string> FeaturePairs { get; set; } = [];
}

/// <summary>
/// Quantization-aware training (`ffc qat`, the recipe's `qat` stage): present = the model is BatchNorm-folded and
/// trained through fake quantizers placed by the mixed-precision policy.
/// </summary>
public sealed class QatConfig
{
    /// <summary>Train images for the initial activation ranges.</summary>
    public int Calibration { get; set; } = 128;
    /// <summary>Initial ranges: minmax, percentile or entropy.</summary>
    public string CalibrationMethod { get; set; } = "percentile";
    /// <summary>How ranges follow training: moving_average or minmax.</summary>
    public string Observer { get; set; } = "moving_average";
    /// <summary>Steps after which observers freeze (ranges fixed for the rest of training and for export).</summary>
    public int FreezeObserversAfter { get; set; } = 100;
    /// <summary>LSQ-style learnable activation scales (observers off).</summary>
    public bool LearnableScales { get; set; }
    /// <summary>Also quantize adds, concats, resizes and gates (the default keeps skips float).</summary>
    public bool Int8Skips { get; set; }
    /// <summary>Conv nodes kept float in addition to the default policy.</summary>
    public List<string> KeepFloat { get; set; } = [];
    /// <summary>Full 8-bit weights ([−127, 127]) instead of the 7-bit range that avoids u8×s8 saturation on CPUs without VNNI.</summary>
    public bool FullRangeWeights { get; set; }
    /// <summary>Storage of attention/injection weights (they compute in float): int8 (per channel), fp16 or fp32.</summary>
    public string IslandWeights { get; set; } = "int8";
    /// <summary>Sensitivity mode: quantize each conv alone, keep this many with the largest `val` PSNR drop float (0: off).</summary>
    public int SensitivityKeep { get; set; }
    /// <summary>Sensitivity mode: also keep float every conv whose drop exceeds this many dB (0: off).</summary>
    public double SensitivityThresholdDb { get; set; }
    /// <summary>`val` faces per sensitivity measurement.</summary>
    public int SensitivityFaces { get; set; } = 32;
    /// <summary>The lowest SQNR (dB) any quantized value or output may have; below it no INT8 model is written
    /// (<see cref="Quantization.QuantAnalysis.RequireSqnrFloor"/>).</summary>
    public double MinSqnrDb { get; set; } = Quantization.QuantAnalysis.DefaultMinSqnrDb;
}

/// <summary>A training configuration (`ffc train --config FILE`), YAML with snake_case keys.</summary>
public sealed class TrainConfig
{
    /// <summary>Built-in architecture (teacher, student) or a checkpoint folder to start from.</summary>
    public string Model { get; set; } = "teacher";
    /// <summary>The model's resolution (attention placement); phases may train below it.</summary>
    public int Resolution { get; set; } = 128;
    public string Data { get; set; } = "datasets/bundled";
    public string Output { get; set; } = "artifacts/train/teacher-128";
    public int Seed { get; set; } = 1;
    public int BatchSize { get; set; } = 8;
    public double SameIdentityFraction { get; set; } = 0.2;
    public List<TrainPhase> Phases { get; set; } = [new() { Resolution = 64, Steps = 3000 }, new() { Resolution = 128, Steps = 1500 }];
    public OptimizerConfig Optimizer { get; set; } = new();
    public LossWeights LossWeights { get; set; } = new();
    /// <summary>Steps before the adversarial and feature-matching terms switch on.</summary>
    public int AdversarialStartStep { get; set; } = 500;
    public int CheckpointEvery { get; set; } = 200;
    public int SampleEvery { get; set; } = 200;
    /// <summary>Pairs of each kind (same identity, cross identity) in the final evaluation on the test split.</summary>
    public int EvalPairs { get; set; } = 64;
    /// <summary>Split used for the final evaluation.</summary>
    public string EvalSplit { get; set; } = "test";
    /// <summary>Checkpoints kept (older ones are deleted).</summary>
    public int KeepCheckpoints { get; set; } = 2;
    /// <summary>CPU threads for TorchSharp; 0 = all cores.</summary>
    public int Threads { get; set; }
    /// <summary>
    /// The identity embedder (an ArcFace-style ONNX recogniser, 112 px on arcface_112_v2, 512 outputs) whose embeddings
    /// the swapper is trained on — source embeddings and the identity loss. Null: the bundled fr_feature.onnx with the
    /// dataset's precomputed embeddings. Give FaceFusion's own recogniser to make a drop-in FaceFusion swapper.
    /// </summary>
    public string? IdentityEmbedder { get; set; }
    /// <summary>Pixel normalisation of <see cref="IdentityEmbedder"/>: ffc ((x − 127)/128) or insightface ((x − 127.5)/127.5).</summary>
    public string IdentityEmbedderNormalization { get; set; } = "ffc";
    /// <summary>A teacher (checkpoint folder or ONNX swapper): set for distillation (`ffc distill`).</summary>
    public string? Teacher { get; set; }
    /// <summary>Pixel range of an ONNX teacher's `target` input and `output`: "minus_one_one" (this toolkit's and
    /// FaceFusion's HyperSwap convention) or "zero_one" (models that take and return [0,1] RGB); converted both ways.</summary>
    public string TeacherPixelRange { get; set; } = "minus_one_one";
    public DistillConfig Distill { get; set; } = new();
    /// <summary>Quantization-aware training when set (null: float training).</summary>
    public QatConfig? Qat { get; set; }
    /// <summary>Optional VGG16/19 weights (safetensors, torchvision keys) for the perceptual loss; else ResNet18.</summary>
    public string? VggWeights { get; set; }
    public string VggKind { get; set; } = "vgg16";
    /// <summary>
    /// Consecutive non-finite steps (NaN/Inf loss or gradient, each skipped and logged) after which the run rolls back
    /// to its last checkpoint with half the learning rates; a second series stops the run with a message.
    /// </summary>
    public int MaxNonFiniteSteps { get; set; } = 5;
    /// <summary>Fault injection for tests: steps whose loss is replaced by NaN.</summary>
    public List<long> FaultNanSteps { get; set; } = [];
    /// <summary>
    /// Cross-identity supervision: each cross pair also gets a pseudo target, one of this many faces of the source's
    /// person closest to the target by landmarks (0: off). Used by loss_weights.cross_reconstruction and cross_perceptual.
    /// </summary>
    public int PseudoTargetNeighbours { get; set; }
    /// <summary>Ramp width of the pseudo-target composite's mask edge, inside the mask, as a fraction of the resolution
    /// (0: hard edge). See <see cref="PseudoTargetComposite"/>.</summary>
    public double PseudoTargetFeather { get; set; }
    /// <summary>Match the pseudo face's per-channel mean and deviation to the target's inside the mask before pasting.</summary>
    public bool PseudoTargetColorMatch { get; set; }
    /// <summary>Identity loss on randomly jittered, blurred or down-sampled copies of the output (<see cref="IdentityAugmentation"/>), so adversarial pixel patterns do not pay.</summary>
    public bool IdentityAugment { get; set; }
    /// <summary>Faces of the train split used (all when null): small runs and tests.</summary>
    public int? TrainLimit { get; set; }

    public int TotalSteps => Phases.Sum(p => p.Steps);

    public TrainPhase PhaseAt(long step)
    {
        long start = 0;
        foreach (var phase in Phases)
        {
            if (step < start + phase.Steps) return phase;
            start += phase.Steps;
        }
        return Phases[^1];
    }

    private static IDeserializer Reader => new DeserializerBuilder().WithNamingConvention(UnderscoredNamingConvention.Instance).Build();
    private static ISerializer Writer => new SerializerBuilder().WithNamingConvention(UnderscoredNamingConvention.Instance).Build();

    public string ToYaml() => Writer.Serialize(this);

    /// <summary>Reads and validates a config; errors name the file, the line and the key.</summary>
    public static TrainConfig Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: training config not found", path);
        TrainConfig config;
        try { config = Reader.Deserialize<TrainConfig>(File.ReadAllText(path)) ?? new TrainConfig(); }
        catch (YamlException e)
        {
            throw new InvalidDataException($"{path}:{e.Start.Line}: {(e.InnerException ?? e).Message}", e);
        }
        config.Validate(path);
        return config;
    }

    public void Validate(string source)
    {
        void Require(bool ok, string message) { if (!ok) throw new InvalidDataException($"{source}: {message}"); }
        Require(Phases.Count > 0, "phases: at least one phase is needed");
        foreach (var p in Phases)
            Require(p.Resolution >= 32 && p.Resolution % 16 == 0 && p.Steps > 0, $"phases: resolution {p.Resolution} must be a multiple of 16 ≥ 32 with steps > 0");
        Require(BatchSize >= 1, "batch_size must be at least 1");
        Require(SameIdentityFraction is >= 0 and <= 1, "same_identity_fraction must be in [0, 1]");
        Require(CheckpointEvery >= 1 && SampleEvery >= 1, "checkpoint_every and sample_every must be at least 1");
        Require(Optimizer.Lr > 0 && Optimizer.DiscriminatorLr > 0, "optimizer learning rates must be positive");
        Require(KeepCheckpoints >= 1, "keep_checkpoints must be at least 1");
        Require(TeacherPixelRange is "minus_one_one" or "zero_one", $"teacher_pixel_range '{TeacherPixelRange}': use minus_one_one or zero_one");
        Require(Distill.IlluminationReference is "teacher" or "target", $"distill.illumination_reference '{Distill.IlluminationReference}': use teacher or target");
        Require(Distill.RegionWeight >= 0 && Distill.PerceptualRegionWeight >= 0, "distill.region_weight and distill.perceptual_region_weight must be ≥ 0");
        Require(PseudoTargetNeighbours is >= 0 and <= 1000, "pseudo_target_neighbours must be in [0, 1000]");
        Require(PseudoTargetFeather is >= 0 and <= 0.5, "pseudo_target_feather must be in [0, 0.5] (a fraction of the resolution)");
        Require(PseudoTargetNeighbours > 0 || (LossWeights.CrossReconstruction == 0 && LossWeights.CrossPerceptual == 0),
            "loss_weights.cross_reconstruction and cross_perceptual need pseudo_target_neighbours > 0");
        Require(IdentityEmbedderNormalization is "ffc" or "insightface", $"identity_embedder_normalization '{IdentityEmbedderNormalization}': use ffc or insightface");
        // The judge scores swaps; a model trained against it would game it as the committed teacher gamed fr_feature.
        string configDir = Path.GetDirectoryName(Path.GetFullPath(source)) ?? ".";
        foreach (var (key, value) in new[] { ("identity_embedder", IdentityEmbedder), ("vgg_weights", VggWeights), ("teacher", Teacher) })
            if (value is not null)
                Require(!JudgeFiles.IsJudgeFile(value) && !JudgeFiles.IsJudgeFile(Path.Combine(configDir, value)), JudgeFiles.RefusalMessage(key, value));
        if (Qat is { } q)
        {
            Require(q.Calibration >= 1, "qat.calibration must be at least 1");
            Require(q.CalibrationMethod is "minmax" or "percentile" or "entropy", $"qat.calibration_method '{q.CalibrationMethod}': use minmax, percentile or entropy");
            Require(q.Observer is "moving_average" or "minmax", $"qat.observer '{q.Observer}': use moving_average or minmax");
            Require(q.FreezeObserversAfter >= 0, "qat.freeze_observers_after must be ≥ 0");
            Require(q.IslandWeights is "int8" or "fp16" or "fp32", $"qat.island_weights '{q.IslandWeights}': use int8, fp16 or fp32");
            Require(double.IsFinite(q.MinSqnrDb), $"qat.min_sqnr_db {q.MinSqnrDb}: give a finite number of dB");
        }
    }
}
