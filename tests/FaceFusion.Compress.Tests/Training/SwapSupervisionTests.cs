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
    public void PseudoTargetComposite_HardPasteIsTheMaskBlend_FeatherRampsInsideTheMask_ColorMatchTakesTheTargetsStatistics()
    {
        using var scope = NewDisposeScope();
        const int size = 32;
        var gen = new Generator().manual_seed(3);
        var pseudo = rand([2, 3, size, size], generator: gen).mul(0.6).sub(0.5);
        var target = rand([2, 3, size, size], generator: gen).mul(0.4).add(0.2);
        var mask = zeros([2, 1, size, size]);
        mask[TensorIndex.Colon, TensorIndex.Colon, TensorIndex.Slice(8, 24), TensorIndex.Slice(8, 24)] = ones([2, 1, 16, 16]);
        var outside = mask.neg().add(1).expand(-1, 3, -1, -1).to_type(ScalarType.Bool);

        var hard = PseudoTargetComposite.Compose(pseudo, target, mask, feather: 0, matchColor: false);
        Assert.True(hard.eq(pseudo.mul(mask).add(target.mul(mask.neg().add(1)))).all().item<bool>());

        // Feathered: never a pixel of the pseudo face's surroundings, the centre is the pseudo face, the mask's first row
        // inside is still mostly the target, and the step across the edge is split over the ramp.
        var soft = PseudoTargetComposite.Compose(pseudo, target, mask, feather: 0.125, matchColor: false);
        Assert.True(soft.masked_select(outside).eq(target.masked_select(outside)).all().item<bool>());
        var ramp = PseudoTargetComposite.InnerRamp(mask, 0.125);
        Assert.InRange(ramp[0, 0, 8, 16].item<float>(), 0f, 0.25f);
        Assert.Equal(1f, ramp[0, 0, 16, 16].item<float>(), 5);
        var column = ramp[0, 0, TensorIndex.Slice(8, 16), 16];
        Assert.True(column.diff().ge(0).all().item<bool>() && column.diff().max().item<float>() <= 0.5f + 1e-5f,
            $"the ramp is not a gradual rise: {string.Join(" ", column.data<float>().ToArray())}");
        Assert.True(soft[0, TensorIndex.Colon, 16, 16].eq(pseudo[0, TensorIndex.Colon, 16, 16]).all().item<bool>());

        // Color-matched: inside the mask the pasted face has the target's per-channel mean and deviation.
        var matched = PseudoTargetComposite.Compose(pseudo, target, mask, feather: 0, matchColor: true);
        var inside = mask.expand(-1, 3, -1, -1).to_type(ScalarType.Bool);
        for (int b = 0; b < 2; b++)
            for (int ch = 0; ch < 3; ch++)
            {
                var m = inside[b, ch];
                var got = matched[b, ch].masked_select(m);
                var want = target[b, ch].masked_select(m);
                Assert.Equal(want.mean().item<float>(), got.mean().item<float>(), 3);
                Assert.Equal(want.std(false).item<float>(), got.std(false).item<float>(), 3);
                Assert.False(got.eq(want).all().item<bool>(), "color matching replaced the face by the target");
            }
        Assert.Throws<ArgumentOutOfRangeException>(() => PseudoTargetComposite.Compose(pseudo, target, mask, 0.6, false));
    }

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
