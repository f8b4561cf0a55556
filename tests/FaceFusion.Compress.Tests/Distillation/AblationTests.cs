using FaceFusion.Compress.Distillation;
using FaceFusion.Compress.Models.Architectures;
using FaceFusion.Compress.Models.Checkpoints;
using FaceFusion.Compress.Tests.Cli;
using FaceFusion.Compress.Tests.Export;

namespace FaceFusion.Compress.Tests.Distillation;

public class AblationTests
{
    [Fact]
    public void Ablation_RunsOnceWithEveryTermAndOnceWithoutEach()
    {
        var dir = TestAssets.TempDir();
        var teacher = Path.Combine(dir, "teacher");
        using (var t = ExportParityTests.Prepared(SwapperArchitectures.Teacher(32))) Checkpoint.Save(teacher, t);
        var config = Path.Combine(dir, "distill.yaml");
        File.WriteAllText(config, $"resolution: 32\ndata: {TinyDataset.Path}\nseed: 2\nbatch_size: 2\nphases:\n  - resolution: 32\n    steps: 2\ncheckpoint_every: 2\nsample_every: 2\neval_pairs: 2\nthreads: 2\n");
        var output = Path.Combine(dir, "ablation");
        var (code, text) = CliTests.Ffc("benchmark", "ablation", "--teacher", teacher, "--config", config, "--terms", "pixel,illumination", "--split", "train", "--seeds", "2", "-o", output);
        Assert.True(code == 0, text);
        var lines = File.ReadAllLines(Path.Combine(output, "ablation.csv"));
        Assert.Equal(string.Join(',', LossAblation.Columns), lines[0]);
        Assert.Equal(["none", "none-seed3", "pixel", "illumination"], lines.Skip(1).Select(l => l.Split(',')[0]));
        Assert.Contains("seed-to-seed spread of the baseline over 2 seeds", text);
        // Each run trained with exactly its term switched off (the config it recorded), the baseline with all on.
        string Recorded(string run) => File.ReadAllText(Path.Combine(output, run, "config.yaml"));
        Assert.Contains("  pixel: 0\n", Recorded("pixel"));
        Assert.Contains("  illumination: 1\n", Recorded("pixel"));
        Assert.Contains("  illumination: 0\n", Recorded("illumination"));
        Assert.Contains("  pixel: 10\n", Recorded("none"));
        Assert.Contains("  illumination: 1\n", Recorded("none"));
        // The repeated baseline differs in its seed only.
        Assert.Contains("seed: 3\n", Recorded("none-seed3"));
        Assert.Equal(Recorded("none").Replace("seed: 2\n", "").Replace(Path.Combine(output, "none"), ""),
            Recorded("none-seed3").Replace("seed: 3\n", "").Replace(Path.Combine(output, "none-seed3"), ""));
        var unknown = CliTests.Ffc("benchmark", "ablation", "--teacher", teacher, "--config", config, "--terms", "magic", "-o", Path.Combine(dir, "x"));
        Assert.NotEqual(0, unknown.Code);
        Assert.Contains("magic", unknown.Output);
    }
}
