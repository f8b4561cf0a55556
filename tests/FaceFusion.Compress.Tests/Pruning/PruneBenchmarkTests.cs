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
        using var taylor = Checkpoint.Load(Path.Combine(output, "taylor"));
        Assert.True(ModelSummary.Of(taylor.Graph, 32).Macs <= 0.85 * macs);
    }
}
