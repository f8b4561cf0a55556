using System.Globalization;
using FaceFusion.Compress.Distillation;
using FaceFusion.Compress.Export;
using FaceFusion.Compress.Models.Architectures;
using FaceFusion.Compress.Models.Checkpoints;
using FaceFusion.Compress.Models.Networks;
using FaceFusion.Compress.Tests.Export;
using FaceFusion.Compress.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Tests.Distillation;

public class DistillationTests
{
    [Fact]
    public void ChannelWiseKl_IsZeroForEqualFeatures_AndMatchesAHandValue()
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(1);
        var a = randn(2, 3, 4, 4, generator: gen);
        Assert.Equal(0f, DistillationLosses.ChannelWise(a, a.clone()).item<float>(), 6);
        Assert.True(DistillationLosses.ChannelWise(a, randn(2, 3, 4, 4, generator: gen)).item<float>() > 0);
        // Teacher logits (0, 0) → p_t = (½, ½); student (0, ln 3) → p_s = (¼, ¾); KL = ½ ln 2 + ½ ln(2/3) = ½ ln(4/3).
        var teacher = tensor(new[] { 0f, 0f }, [1, 1, 1, 2]);
        var student = tensor(new[] { 0f, MathF.Log(3) }, [1, 1, 1, 2]);
        Assert.Equal(0.5 * Math.Log(4.0 / 3), DistillationLosses.ChannelWise(student, teacher, tau: 1).item<float>(), 5);
        // τ scales logits and the loss by τ².
        Assert.Equal(4 * 0.5 * Math.Log(4.0 / 3), DistillationLosses.ChannelWise(student.mul(2), teacher, tau: 2).item<float>(), 5);
    }

    [Fact]
    public void FrozenNetworks_HaveNoTrainableParameters()
    {
        var dir = TestAssets.TempDir();
        using (var model = ExportParityTests.Prepared(SwapperArchitectures.Teacher(32))) Checkpoint.Save(dir, model);
        using var teacher = new CheckpointTeacher(dir);
        using var identity = new IdentityNetwork(TestAssets.Assets.IdentityEmbedder);
        Assert.All(identity.parameters(), p => Assert.False(p.requires_grad));
        using var scope = NewDisposeScope();
        var x = rand(2, 3, 32, 32).mul(2).sub(1);
        x.requires_grad = true;
        var result = teacher.Run(x, nn.functional.normalize(ones(2, 512), dim: 1), []);
        Assert.False(result.Output.requires_grad);
    }

    [Fact]
    public void EveryLossTerm_IsFinite_AndHasGradientsOnTheStudentOnly()
    {
        var dir = TestAssets.TempDir();
        var teacherDir = Path.Combine(dir, "teacher");
        using (var t = ExportParityTests.Prepared(SwapperArchitectures.Teacher(32))) Checkpoint.Save(teacherDir, t);
        var config = DistillConfig(Path.Combine(dir, "all-terms"), teacherDir, 3);
        config.AdversarialStartStep = 0;
        config.SameIdentityFraction = 1; // the reconstruction terms only count same-identity pairs
        config.LossWeights = new LossWeights { Reconstruction = 1, Ssim = 1, Identity = 1, Perceptual = 1, Adversarial = 0.1, FeatureMatching = 1, Mask = 1, Background = 1 };
        config.Distill = new DistillConfig { Pixel = 1, Mask = 1, Cwd = 1, FeatureMse = 1, Perceptual = 1, PerceptualRegionWeight = 2, IdentityTeacher = 1, Illumination = 1, IlluminationReference = "target", FeaturePairs = ["dec1_pwact=dec1b_act"] };
        var withGradient = new HashSet<string>();
        var seen = new HashSet<string>();
        int frozenCount = 0;
        var trainer = new SwapTrainer(config, TestAssets.Assets, dir)
        {
            TermProbe = (terms, student, frozen, teacherOutput) =>
            {
                // Identity, perceptual and teacher networks are frozen: no gradient can reach them, and the teacher's
                // output carries no graph back into the teacher.
                Assert.All(frozen, p => Assert.False(p.requires_grad));
                frozenCount = frozen.Count;
                Assert.NotNull(teacherOutput);
                Assert.False(teacherOutput!.requires_grad);
                var parameters = student.parameters().Select(p => (Tensor)p).ToList();
                foreach (var (name, (weight, value)) in terms)
                {
                    seen.Add(name);
                    Assert.True(double.IsFinite(value.sum().item<float>()), $"loss term {name} is not finite");
                    if (weight == 0 || !value.requires_grad) continue;
                    var grads = torch.autograd.grad([value.sum()], parameters, retain_graph: true, allow_unused: true);
                    if (grads.Any(g => g is not null && g.IsInvalid == false && g.abs().sum().item<float>() > 0)) withGradient.Add(name);
                }
            },
        };
        trainer.Train(false);
        string[] expected = ["reconstruction", "ssim", "identity", "mask", "background", "perceptual", "adversarial", "feature_matching",
            "distill_pixel", "distill_mask", "distill_perceptual", "distill_identity", "illumination", "distill_cwd", "distill_feature_mse"];
        Assert.Empty(expected.Except(seen));
        Assert.Empty(expected.Except(withGradient));
        Assert.True(frozenCount > 100, $"only {frozenCount} frozen parameters seen"); // identity + ResNet18 + teacher
    }

    [Fact]
    public void PerceptualRegionWeight_CountsDifferencesInsideTheRegionMore()
    {
        using var perceptual = PerceptualNetwork.ResNet18(TestAssets.Assets.ResNet18, TestAssets.Assets.ResNetPreprocess);
        using var scope = NewDisposeScope();
        var gen = new Generator(3);
        var a = rand(1, 3, 64, 64, generator: gen).mul(2).sub(1);
        // b differs from a in the top half only.
        var b = a.clone();
        b[.., .., ..32, ..] = rand(1, 3, 32, 64, generator: gen).mul(2).sub(1);
        var plain = perceptual.Distance(a, b).item<float>();
        Assert.Equal(plain, perceptual.Distance(a, b, ones(1, 1, 64, 64)).item<float>(), 5);
        var top = zeros(1, 1, 64, 64); top[.., .., ..32, ..] = 1;
        var onDifference = perceptual.Distance(a, b, top.mul(3).add(1)).item<float>();
        var elsewhere = perceptual.Distance(a, b, top.neg().add(1).mul(3).add(1)).item<float>();
        Assert.True(onDifference > 1.5 * plain, $"weighted where the images differ: {onDifference} vs unweighted {plain}");
        Assert.True(onDifference > elsewhere, $"{onDifference} ≤ {elsewhere}");
    }

    [Fact]
    public void OnnxTeacher_WithAFixedBatchOfOne_AndZeroOnePixels_RunsAnyBatchInTheToolkitsRange()
    {
        // A minimal foreign swapper: output = 0.5 · target, inputs exported with a fixed batch of 1 (as many FaceFusion
        // models are), pixels in [0,1].
        var model = new Onnx.ModelProto { IrVersion = 8, Graph = new Onnx.GraphProto { Name = "half" } };
        model.OpsetImport.Add(new Onnx.OperatorSetIdProto { Version = 17 });
        Onnx.ValueInfoProto Input(string name, params long[] dims)
        {
            var shape = new Onnx.TensorShapeProto();
            foreach (var d in dims) shape.Dim.Add(new Onnx.TensorShapeProto.Types.Dimension { DimValue = d });
            return new Onnx.ValueInfoProto { Name = name, Type = new Onnx.TypeProto { TensorType = new Onnx.TypeProto.Types.Tensor { ElemType = 1, Shape = shape } } };
        }
        model.Graph.Input.Add(Input("target", 1, 3, 32, 32));
        model.Graph.Input.Add(Input("source", 1, 512));
        model.Graph.Output.Add(new Onnx.ValueInfoProto { Name = "output", Type = new Onnx.TypeProto { TensorType = new Onnx.TypeProto.Types.Tensor { ElemType = 1 } } });
        var half = new Onnx.TensorProto { Name = "half", DataType = 1 };
        half.FloatData.Add(0.5f);
        model.Graph.Initializer.Add(half);
        var mul = new Onnx.NodeProto { OpType = "Mul", Name = "mul" };
        mul.Input.Add("target"); mul.Input.Add("half"); mul.Output.Add("output");
        model.Graph.Node.Add(mul);
        var path = Path.Combine(TestAssets.TempDir(), "half.onnx");
        File.WriteAllBytes(path, Google.Protobuf.MessageExtensions.ToByteArray(model));

        using var scope = NewDisposeScope();
        var target = rand(3, 3, 32, 32).mul(2).sub(1);
        var source = nn.functional.normalize(randn(3, 512), dim: 1);
        using (var teacher = new OnnxTeacher(path))
            Assert.True(teacher.Run(target, source, []).Output.allclose(target.mul(0.5), 1e-5, 1e-6)); // 3 samples through a batch of 1
        using (var teacher = (OnnxTeacher)Teachers.Open(path, zeroOnePixels: true))
        {
            // In [0,1]: (x + 1)/2 → halved → back to [−1,1]: (x + 1)/2 − 1.
            var output = teacher.Run(target, source, []).Output;
            Assert.Equal([3L, 3, 32, 32], output.shape);
            Assert.True(output.allclose(target.add(1).div(2).sub(1), 1e-5, 1e-6));
        }
    }

    private static TrainConfig DistillConfig(string output, string teacher, int steps) => new()
    {
        Model = "student", Resolution = 32, Data = TinyDataset.Path, Output = output, Seed = 5, BatchSize = 4, Teacher = teacher,
        Phases = [new TrainPhase { Resolution = 32, Steps = steps }], AdversarialStartStep = 1, CheckpointEvery = 2, SampleEvery = 100,
        EvalPairs = 2, EvalSplit = "train", Threads = 2,
        Optimizer = new OptimizerConfig { Lr = 1e-3 },
        LossWeights = new LossWeights { Reconstruction = 0, Ssim = 0, Identity = 0, Perceptual = 0, Adversarial = 0, FeatureMatching = 0, Mask = 0, Background = 0 },
        Distill = new DistillConfig { Pixel = 10, Perceptual = 0, Illumination = 1 },
    };

    [Fact]
    public void DistillingFromAnOnnxTeacher_ReducesTheStudentTeacherGap()
    {
        var dir = TestAssets.TempDir();
        var teacherPath = Path.Combine(dir, "teacher.onnx");
        using (var t = ExportParityTests.Prepared(SwapperArchitectures.Teacher(32))) OnnxExporter.ExportToFile(t, teacherPath);
        var output = Path.Combine(dir, "distill");
        new SwapTrainer(DistillConfig(output, teacherPath, 12), TestAssets.Assets, dir).Train(false);
        var rows = File.ReadAllLines(Path.Combine(output, "train_log.csv"));
        var columns = rows[0].Split(',').ToList();
        int pixel = columns.IndexOf("loss_distill_pixel");
        Assert.True(pixel > 0);
        Assert.Contains("loss_illumination", columns);
        var values = rows.Skip(1).Select(r => double.Parse(r.Split(',')[pixel], CultureInfo.InvariantCulture)).ToList();
        Assert.True(values.Skip(9).Average() < 0.8 * values.Take(3).Average(), $"pixel distillation loss {string.Join(" ", values.Select(v => v.ToString("0.000")))}");
        Assert.Contains("teacher: ONNX", File.ReadAllText(Path.Combine(output, "train.log")));
    }

    [Fact]
    public void FeaturePairs_UseAdapters_AndResumeExactly()
    {
        var dir = TestAssets.TempDir();
        var teacherDir = Path.Combine(dir, "teacher");
        using (var t = ExportParityTests.Prepared(SwapperArchitectures.Teacher(32))) Checkpoint.Save(teacherDir, t);
        TrainConfig Config(string output)
        {
            var c = DistillConfig(output, teacherDir, 4);
            c.Distill.FeaturePairs = ["dec1_pwact=dec1b_act"]; // student 24 channels → teacher 48: a 1×1 adapter
            c.Distill.Cwd = 1;
            return c;
        }
        var straight = Path.Combine(dir, "a");
        new SwapTrainer(Config(straight), TestAssets.Assets, dir).Train(false);
        var resumed = Path.Combine(dir, "b");
        var trainer = new SwapTrainer(Config(resumed), TestAssets.Assets, dir);
        trainer.Train(false, stopAfter: 2);
        Assert.True(File.Exists(Path.Combine(resumed, "checkpoints", "step-000002", "adapters.safetensors")));
        trainer.Train(true);
        var a = File.ReadAllLines(Path.Combine(straight, "train_log.csv"));
        var b = File.ReadAllLines(Path.Combine(resumed, "train_log.csv"));
        var columns = a[0].Split(',').ToList();
        int cwd = columns.IndexOf("loss_distill_cwd"), total = columns.IndexOf("loss_total");
        Assert.True(double.Parse(a[1].Split(',')[cwd], CultureInfo.InvariantCulture) > 0);
        for (int i = 1; i < a.Length; i++)
            Assert.Equal(double.Parse(a[i].Split(',')[total], CultureInfo.InvariantCulture), double.Parse(b[i].Split(',')[total], CultureInfo.InvariantCulture), 4);
    }
}
