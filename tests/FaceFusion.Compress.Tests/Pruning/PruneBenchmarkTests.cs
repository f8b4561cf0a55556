using FaceFusion.Compress.Models.Architectures;
using FaceFusion.Compress.Models.Checkpoints;
using FaceFusion.Compress.Models.Graph;
using FaceFusion.Compress.Tests.Cli;
using FaceFusion.Compress.Tests.Export;

namespace FaceFusion.Compress.Tests.Pruning;

public class PruneBenchmarkTests
{
    [Fact]
    public void BenchmarkPrune_ComparesCriteriaAtTheSameTarget()
    {
        var dir = TestAssets.TempDir();
        var teacher = Path.Combine(dir, "teacher");
        long macs;
        using (var model = ExportParityTests.Prepared(SwapperArchitectures.Teacher(32)))
        {
            Checkpoint.Save(teacher, model);
            macs = ModelSummary.Of(model.Graph, 32).Macs;
        }
        var output = Path.Combine(dir, "bench");
        var (code, text) = CliTests.Ffc("benchmark", "prune", teacher, "--target-macs", "0.85", "--criteria", "taylor,random", "--finetune", "1",
            "--split", "val", "--eval-pairs", "4", "--train-limit", "8", "--dataset", TinyDataset.Path, "-o", output);
        Assert.True(code == 0, text);
        var lines = File.ReadAllLines(Path.Combine(output, "prune_benchmark.csv"));
        Assert.Equal("criterion,params,macs,p50_ms,test_psnr_db,psnr_drop_db,param_reduction,mac_reduction,latency_reduction,latency_per_mac,outcome", lines[0]);
        Assert.Equal(["unpruned", "taylor", "random"], lines.Skip(1).Select(l => l.Split(',')[0]));
        foreach (var line in lines.Skip(2))
            Assert.True(long.Parse(line.Split(',')[2]) <= 0.85 * macs, line);
        Assert.Contains("latency/MAC", text);
        // Each criterion's pruned model is kept and reloads on its own.
        using (var taylor = Checkpoint.Load(Path.Combine(output, "taylor")))
            Assert.True(ModelSummary.Of(taylor.Graph, 32).Macs <= 0.85 * macs);
        Assert.True(File.Exists(Path.Combine(output, "taylor.onnx")));

        // Run again: finished criteria continue from their saved progress (nothing pruned or fine-tuned again) and
        // give the same models and quality; only latency is measured anew.
        var progress = Path.Combine(output, "taylor.progress", "progress.json");
        Assert.True(File.Exists(progress), progress);
        var written = File.GetLastWriteTimeUtc(progress);
        var (again, againText) = CliTests.Ffc("benchmark", "prune", teacher, "--target-macs", "0.85", "--criteria", "taylor,random", "--finetune", "1",
            "--split", "val", "--eval-pairs", "4", "--train-limit", "8", "--dataset", TinyDataset.Path, "-o", output);
        Assert.True(again == 0, againText);
        Assert.Equal(written, File.GetLastWriteTimeUtc(progress));
        string Quality(string line) { var f = line.Split(','); return string.Join(',', f[0], f[1], f[2], f[4]); }
        Assert.Equal(lines.Skip(1).Select(Quality), File.ReadAllLines(Path.Combine(output, "prune_benchmark.csv")).Skip(1).Select(Quality));

        // Recovery fine-tuning and the control: the pruned models train 2 more steps; the unpruned model is fine-tuned as
        // long as the longest-trained pruned one (its accepted steps × 1 + 2) and keeps its size.
        var (third, thirdText) = CliTests.Ffc("benchmark", "prune", teacher, "--target-macs", "0.85", "--criteria", "taylor,random", "--finetune", "1",
            "--final-finetune", "2", "--control", "--split", "val", "--eval-pairs", "4", "--train-limit", "8", "--dataset", TinyDataset.Path, "-o", output);
        Assert.True(third == 0, thirdText);
        var rows = File.ReadAllLines(Path.Combine(output, "prune_benchmark.csv")).Skip(1).Select(l => l.Split(',')).ToList();
        Assert.Equal(["unpruned", "taylor", "random", "control"], rows.Select(r => r[0]));
        Assert.Equal(rows[0][1], rows[3][1]);
        Assert.Equal(rows[0][2], rows[3][2]);
        int accepted = new[] { "taylor", "random" }.Max(c => File.ReadAllText(Path.Combine(output, $"{c}.progress", "progress.json")).Split("accepted").Length - 1);
        Assert.Contains($"fine-tuned {accepted + 2} steps", rows[3][^1]);
        Assert.Contains("then 2 recovery fine-tuning steps", rows[1][^1]);
        Assert.NotEqual(rows[1][4], lines[2].Split(',')[4]); // recovered taylor differs from the plain one
        Assert.Contains("against the control", thirdText);
    }
}
