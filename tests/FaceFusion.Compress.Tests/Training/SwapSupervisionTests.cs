using System.Globalization;
using FaceFusion.Compress.Data;
using FaceFusion.Compress.Models.Architectures;
using FaceFusion.Compress.Models.Graph;
using FaceFusion.Compress.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Tests.Training;

/// <summary>What makes the swapping teacher swap: pseudo targets for cross pairs, the architecture's narrow target path,
/// and the identity loss's augmented views.</summary>
public class SwapSupervisionTests
{
    [Fact]
    public void PseudoTargets_AreTheSourcePersonsNearestFaces_AndLeaveTheBatchOtherwiseUnchanged()
    {
        using var plain = new FaceSwapData(TinyDataset.Path, Splits.Train, 32);
        using var data = new FaceSwapData(TinyDataset.Path, Splits.Train, 32) { PseudoTargetNeighbours = 2 };
        var landmarks = data.Records.Select(r => r.LandmarkPoints().SelectMany(p => new[] { p.X / r.CropSize, p.Y / r.CropSize }).ToArray()).ToList();
        double Distance(int a, int b) => landmarks[a].Zip(landmarks[b]).Sum(p => (p.First - p.Second) * (p.First - p.Second));
        int crossSeen = 0;
        for (long step = 0; step < 6; step++)
        {
            using var withPseudo = data.Sample(8, 0.3, seed: 5, step);
            using var without = plain.Sample(8, 0.3, seed: 5, step);
            Assert.Null(without.PseudoTarget);
            Assert.Equal(without.TargetIndices, withPseudo.TargetIndices);
            Assert.Equal(without.SourceIndices, withPseudo.SourceIndices);
            Assert.True(without.Target.eq(withPseudo.Target).all().item<bool>(), "pseudo targets changed the targets or their flips");
            for (int i = 0; i < 8; i++)
            {
                int t = withPseudo.TargetIndices[i], s = withPseudo.SourceIndices[i], p = withPseudo.PseudoIndices![i];
                if (data.IdentityOf(t) == data.IdentityOf(s))
                {
                    Assert.Equal(t, p);
                    Assert.True(withPseudo.PseudoTarget![i].eq(withPseudo.Target[i]).all().item<bool>());
                    continue;
                }
                crossSeen++;
                Assert.Equal(data.IdentityOf(s), data.IdentityOf(p));
                // Among the two closest faces of the source's person, computed here independently.
                var closest = data.FacesOf(data.IdentityOf(s)).OrderBy(j => Distance(t, j)).Take(2).ToList();
                Assert.Contains(p, closest);
            }
        }
        Assert.True(crossSeen > 10);
        // Deterministic in (seed, step).
        using var again = data.Sample(8, 0.3, seed: 5, step: 3);
        using var first = data.Sample(8, 0.3, seed: 5, step: 3);
        Assert.Equal(first.PseudoIndices, again.PseudoIndices);
    }

    [Fact]
    public void CrossTerms_WithoutPseudoTargets_AreRejected()
    {
        var config = new TrainConfig { LossWeights = new LossWeights { CrossReconstruction = 1 } };
        var e = Assert.Throws<InvalidDataException>(() => config.Validate("x.yaml"));
        Assert.Contains("pseudo_target_neighbours", e.Message);
        Assert.StartsWith("x.yaml", e.Message);
        config.PseudoTargetNeighbours = 4;
        config.Validate("x.yaml");
    }

    [Theory]
    [InlineData(64)]
    [InlineData(128)]
    public void SwapTeacher_ReadsTheTargetOnlyAtQuarterResolutionOrBelow_AndInjectsIdentityAtEveryDecoderLevel(int resolution)
    {
        var graph = SwapperArchitectures.SwapTeacher(resolution);
        var shapes = ShapeInference.Infer(graph, resolution);
        var stageOf = graph.Nodes.ToDictionary(n => n.Name, n => n.Stage);
        foreach (var node in graph.Nodes.Where(n => n.Stage is "decoder" or "head"))
            foreach (var input in node.Inputs.Where(i => stageOf.TryGetValue(i, out var s) && s == "encoder"))
                Assert.True(shapes[input].Height <= resolution / 4, $"{node.Name} reads encoder node {input} at {shapes[input].Height} px");
        Assert.DoesNotContain(graph.Nodes, n => n.Stage is "decoder" or "head" && n.Inputs.Contains(SwapperIO.Target));
        var injectedSizes = graph.Nodes.Where(n => n.Op == Ops.IdentityInjection && n.Stage == "decoder").Select(n => shapes[n.Name].Height).ToHashSet();
        Assert.Equal(new[] { resolution / 8, resolution / 4, resolution / 2, resolution }.ToHashSet(), injectedSizes);
    }

    [Fact]
    public void IdentityAugmentation_GivesNearbyDifferentViews_Deterministically_WithGradients()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(1);
        var images = rand(4, 3, 32, 32).mul(2).sub(1).requires_grad_();
        var a = IdentityAugmentation.Apply(images, new Random(9));
        var b = IdentityAugmentation.Apply(images, new Random(9));
        Assert.Equal(images.shape, a.shape);
        Assert.True(a.eq(b).all().item<bool>());
        double change = a.sub(images).abs().mean().item<float>();
        Assert.True(change > 1e-3, $"the view equals the input (mean change {change})");
        var c = IdentityAugmentation.Apply(images, new Random(10));
        Assert.False(a.eq(c).all().item<bool>());
        a.sum().backward();
        Assert.True(images.grad!.abs().sum().item<float>() > 0);
    }

    [Fact]
    public void Training_WithPseudoTargets_LogsTheCrossTerms()
    {
        var output = Path.Combine(TestAssets.TempDir(), "swap-teacher");
        var config = new TrainConfig
        {
            Model = "swap-teacher", Resolution = 32, Data = TinyDataset.Path, Output = output, Seed = 3, BatchSize = 4,
            Phases = [new TrainPhase { Resolution = 32, Steps = 2 }], AdversarialStartStep = 1, CheckpointEvery = 2,
            SampleEvery = 2, EvalPairs = 4, EvalSplit = "train", Threads = 2, SameIdentityFraction = 0.25,
            PseudoTargetNeighbours = 3, IdentityAugment = true,
            LossWeights = new LossWeights { CrossReconstruction = 10, CrossPerceptual = 1 },
        };
        var trainer = new SwapTrainer(config, TestAssets.Assets, TestAssets.TempDir());
        Assert.Equal(2, trainer.Train(resume: false));
        var lines = File.ReadAllLines(Path.Combine(output, "train_log.csv"));
        var header = lines[0].Split(',').ToList();
        Assert.Equal(SwapTrainer.LogColumns, header.Take(SwapTrainer.LogColumns.Count));
        Assert.Equal(["loss_cross_reconstruction", "loss_cross_perceptual"], header.Skip(SwapTrainer.LogColumns.Count));
        var values = lines[1].Split(',').Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        Assert.True(values[header.IndexOf("loss_cross_reconstruction")] > 0);
        Assert.True(values[header.IndexOf("loss_cross_perceptual")] > 0);
    }

    [Fact]
    public void WeightsOnlyCheckpoint_Resumes_WithFreshMoments_AndOneOptimizerFileIsRefused()
    {
        var output = Path.Combine(TestAssets.TempDir(), "weights-only");
        TrainConfig Config() => new()
        {
            Model = "student", Resolution = 32, Data = TinyDataset.Path, Output = output, Seed = 3, BatchSize = 2,
            Phases = [new TrainPhase { Resolution = 32, Steps = 3 }], AdversarialStartStep = 1, CheckpointEvery = 2,
            SampleEvery = 10, EvalPairs = 2, EvalSplit = "train", Threads = 2,
        };
        var trainer = new SwapTrainer(Config(), TestAssets.Assets, TestAssets.TempDir());
        Assert.Equal(2, trainer.Train(resume: false, stopAfter: 2));
        var checkpoint = trainer.LatestCheckpoint()!;
        File.Delete(Path.Combine(checkpoint, "optimizer_d.bin"));
        var e = Assert.Throws<InvalidDataException>(() => new SwapTrainer(Config(), TestAssets.Assets, TestAssets.TempDir()).Train(resume: true));
        Assert.Contains("only one of optimizer_g.bin and optimizer_d.bin", e.Message);
        File.Delete(Path.Combine(checkpoint, "optimizer_g.bin"));
        Assert.Equal(3, new SwapTrainer(Config(), TestAssets.Assets, TestAssets.TempDir()).Train(resume: true));
        Assert.Contains("no optimizer state (a weights-only checkpoint)", File.ReadAllText(Path.Combine(output, "train.log")));
    }
}
