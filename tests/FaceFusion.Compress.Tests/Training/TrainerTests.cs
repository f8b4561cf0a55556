using System.Globalization;
using FaceFusion.Compress.Models.Checkpoints;
using FaceFusion.Compress.Training;

namespace FaceFusion.Compress.Tests.Training;

public class TrainerTests
{
    private static TrainConfig TinyConfig(string output, string model = "student") => new()
    {
        Model = model, Resolution = 32, Data = TinyDataset.Path, Output = output, Seed = 3, BatchSize = 4,
        Phases = [new TrainPhase { Resolution = 32, Steps = 4 }], AdversarialStartStep = 1, CheckpointEvery = 2,
        SampleEvery = 2, EvalPairs = 4, EvalSplit = "train", Threads = 2,
    };

    private static List<double[]> Losses(string output) =>
        File.ReadAllLines(Path.Combine(output, "train_log.csv")).Skip(1)
            .Select(l => l.Split(',').Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray()).ToList();

    [Fact]
    public void Resume_ContinuesTheSameLossCurve()
    {
        var straight = Path.Combine(TestAssets.TempDir(), "straight");
        new SwapTrainer(TinyConfig(straight), TestAssets.Assets, TestAssets.TempDir()).Train(resume: false);

        var interrupted = Path.Combine(TestAssets.TempDir(), "interrupted");
        var trainer = new SwapTrainer(TinyConfig(interrupted), TestAssets.Assets, TestAssets.TempDir());
        Assert.Equal(2, trainer.Train(resume: false, stopAfter: 2));
        Assert.False(Directory.Exists(trainer.ModelDir));
        var refused = Assert.Throws<InvalidOperationException>(() => trainer.Train(resume: false));
        Assert.Contains("--resume", refused.Message);
        Assert.Equal(4, trainer.Train(resume: true));

        var a = Losses(straight);
        var b = Losses(interrupted);
        Assert.Equal(4, a.Count);
        Assert.Equal(a.Count, b.Count);
        var columns = SwapTrainer.LogColumns.ToList();
        foreach (var (rowA, rowB) in a.Zip(b))
            foreach (var name in columns.Where(c => c.StartsWith("loss_")))
            {
                int i = columns.IndexOf(name);
                Assert.True(Math.Abs(rowA[i] - rowB[i]) <= 1e-4, $"step {rowA[0]} {name}: {rowA[i]} vs {rowB[i]}");
            }
        // The adversarial terms were active, so the discriminator and both optimizers were restored too.
        Assert.True(b[^1][columns.IndexOf("loss_discriminator")] > 0);

        // The trained model reloads from its own files and has metrics with the baselines.
        using var model = Checkpoint.Load(trainer.ModelDir);
        Assert.Equal("student", model.Graph.Name);
        var metrics = File.ReadAllText(Path.Combine(trainer.ModelDir, "metrics.json"));
        Assert.Contains("copy_target", metrics);
        Assert.True(File.Exists(Path.Combine(interrupted, "samples", "step-000004.png")));
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(interrupted, "tensorboard"), "*", SearchOption.AllDirectories));
    }

    [Fact]
    public void NonFiniteLoss_SkipsTheStep_AndRepeatedOnesRollBackThenStop()
    {
        var output = Path.Combine(TestAssets.TempDir(), "nan");
        var config = TinyConfig(output);
        config.FaultNanSteps = [2];
        var trainer = new SwapTrainer(config, TestAssets.Assets, TestAssets.TempDir());
        Assert.Equal(4, trainer.Train(resume: false));
        var log = File.ReadAllText(Path.Combine(output, "train.log"));
        Assert.Contains("step 2: non-finite loss (targets", log);
        using (var model = Checkpoint.Load(trainer.ModelDir))
            Assert.All(model.parameters(), p => Assert.False(p.isnan().any().item<bool>()));

        var output2 = Path.Combine(TestAssets.TempDir(), "nan2");
        var config2 = TinyConfig(output2);
        config2.FaultNanSteps = [3, 4, 5];
        config2.Phases = [new TrainPhase { Resolution = 32, Steps = 6 }];
        config2.MaxNonFiniteSteps = 2;
        config2.CheckpointEvery = 1;
        var e = Assert.Throws<InvalidOperationException>(() => new SwapTrainer(config2, TestAssets.Assets, TestAssets.TempDir()).Train(resume: false));
        Assert.Contains("non-finite steps in a row", e.Message);
        // Steps 3 and 4 fail → back to the checkpoint after step 3 with halved learning rates; 4 and 5 fail again → stop.
        Assert.Contains("rolled back to step-000003", File.ReadAllText(Path.Combine(output2, "train.log")));
        Assert.Contains("after a rollback", e.Message);
    }

    [Fact]
    public void LogHasTheDocumentedColumns()
    {
        Assert.Equal(["step", "epoch", "resolution", "lr", "loss_total", "images_per_s"], SwapTrainer.LogColumns.Take(6));
        Assert.Contains("loss_identity", SwapTrainer.LogColumns);
        Assert.Contains("loss_adversarial", SwapTrainer.LogColumns);
    }

    [Fact]
    public void Config_ErrorsNameTheFileAndKey()
    {
        var dir = TestAssets.TempDir();
        var path = Path.Combine(dir, "bad.yaml");
        File.WriteAllText(path, "model: teacher\nbatch_sise: 4\n");
        var e = Assert.Throws<InvalidDataException>(() => TrainConfig.Load(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("batch_sise", e.Message);
        File.WriteAllText(path, "phases:\n  - resolution: 40\n    steps: 10\n");
        var e2 = Assert.Throws<InvalidDataException>(() => TrainConfig.Load(path));
        Assert.Contains("multiple of 16", e2.Message);
        var recipe = TrainConfig.Load(Path.Combine(FindRecipes(), "teacher-128.yaml"));
        Assert.Equal([64, 128], recipe.Phases.Select(p => p.Resolution));
        // Every shipped training config (the YAML files without recipe stages) loads.
        var configs = Directory.GetFiles(FindRecipes(), "*.yaml").Where(f => !File.ReadAllText(f).Contains("\nstages:")).ToList();
        Assert.Contains(configs, f => f.EndsWith("distill-ablation-64.yaml"));
        Assert.All(configs, f => Assert.NotEmpty(TrainConfig.Load(f).Phases));
    }

    private static string FindRecipes() => Path.Combine(FaceFusion.Compress.Assets.AssetPaths.FindRepositoryRoot()!, "recipes");
}

public class EmbedderSettingTests
{
    [Fact]
    public void ACustomIdentityEmbedder_DrivesSourcesAndLoss_AndIsRecordedForFaceFusion()
    {
        var root = TestAssets.TempDir();
        // A user-supplied recogniser (here a renamed copy of the bundled one, fed insightface-style pixels).
        var recogniser = Path.Combine(root, "my_arcface.onnx");
        File.Copy(TestAssets.Assets.IdentityEmbedder, recogniser);
        var config = new TrainConfig
        {
            Model = "student", Resolution = 32, Data = TinyDataset.Path, Output = Path.Combine(root, "run"), Seed = 3, BatchSize = 2,
            Phases = [new TrainPhase { Resolution = 32, Steps = 2 }], CheckpointEvery = 2, SampleEvery = 2, EvalPairs = 2, EvalSplit = "train",
            IdentityEmbedder = recogniser, IdentityEmbedderNormalization = "insightface",
        };
        var trainer = new SwapTrainer(config, TestAssets.Assets, root);
        Assert.Equal(2, trainer.Train(resume: false));
        var graph = Checkpoint.LoadGraph(trainer.ModelDir);
        Assert.StartsWith("my_arcface.onnx (sha256 ", graph.Metadata["embedder"]);
        Assert.Contains("insightface", graph.Metadata["embedder"]);
        Assert.StartsWith("drop-in", graph.Metadata["facefusion_compatibility"]);

        var onnx = Path.Combine(root, "model.onnx");
        using (var model = Checkpoint.Load(trainer.ModelDir)) FaceFusion.Compress.Export.OnnxExporter.ExportToFile(model, onnx);
        using (var wrongEmbedder = new FaceFusion.Compress.Runtime.FaceSwapPipeline(TestAssets.Assets, onnx))
            Assert.Contains("my_arcface.onnx", wrongEmbedder.EmbedderMismatch);
        using (var rightEmbedder = new FaceFusion.Compress.Runtime.FaceSwapPipeline(TestAssets.Assets, onnx,
            new FaceFusion.Compress.Runtime.SwapOptions { EmbedderPath = recogniser, EmbedderNormalization = "insightface" }))
            Assert.Null(rightEmbedder.EmbedderMismatch);

        // Batches take their source embeddings from the configured embedder, not the dataset's precomputed ones.
        using var data = new FaceSwapData(TinyDataset.Path, "train", 32) { SourceEmbedder = images => TorchSharp.torch.zeros(images.shape[0], 512) };
        using var batch = data.Sample(3, 0.5, 1, 0);
        Assert.Equal(0f, batch.Source.abs().sum().item<float>());
    }

    [Fact]
    public void TheDefaultEmbedder_IsDeclaredShapeCompatibleOnly()
    {
        var graph = FaceFusion.Compress.Models.Architectures.SwapperArchitectures.Student(32);
        Assert.Equal("fr_feature.onnx", graph.Metadata["embedder"]);
        Assert.StartsWith("shape-compatible only", graph.Metadata["facefusion_compatibility"]);
    }
}
