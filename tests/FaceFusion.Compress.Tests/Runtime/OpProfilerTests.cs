using FaceFusion.Compress.Export;
using FaceFusion.Compress.Models.Architectures;
using FaceFusion.Compress.Runtime;
using FaceFusion.Compress.Tests.Cli;
using FaceFusion.Compress.Tests.Export;

namespace FaceFusion.Compress.Tests.Runtime;

public class OpProfilerTests
{
    [Fact]
    public void NodeProfile_AddsUpToTheOpProfile_AndTheCliPrintsIt()
    {
        var path = Path.Combine(TestAssets.TempDir(), "student-32.onnx");
        using (var model = ExportParityTests.Prepared(SwapperArchitectures.Student(32))) OnnxExporter.ExportToFile(model, path);

        var nodes = OpProfiler.ProfileNodes(path, runs: 3);
        Assert.NotEmpty(nodes);
        Assert.Equal(nodes.Count, nodes.Select(n => n.Node).Distinct().Count());
        Assert.All(nodes, n => Assert.False(n.Node.EndsWith("_kernel_time")));
        Assert.Equal(1.0, nodes.Sum(n => n.Share), 6);
        Assert.True(nodes.Zip(nodes.Skip(1)).All(p => p.First.MsPerRun >= p.Second.MsPerRun), "most expensive first");
        Assert.Contains(nodes, n => n.OpType.Contains("Conv"));

        // Per op type: the node times of a separate profiled run group into the same op types and node counts.
        var ops = OpProfiler.Profile(path, runs: 3);
        Assert.Equal(nodes.GroupBy(n => n.OpType).Select(g => (g.Key, g.Count())).OrderBy(x => x.Key), ops.Select(o => (o.OpType, o.Nodes)).OrderBy(x => x.OpType));
        Assert.Equal(1.0, ops.Sum(o => o.Share), 6);

        var (code, text) = CliTests.Ffc("benchmark", "latency", path, path, "--rounds", "2", "--node-profile", "3");
        Assert.True(code == 0, text);
        Assert.Contains("3 most expensive nodes", text);

        // Repeats: the ratio to the first model comes with its range over the repeats; a bad count is refused.
        var repeated = CliTests.Ffc("benchmark", "latency", path, path, "--rounds", "2", "--repeats", "3");
        Assert.True(repeated.Code == 0, repeated.Output);
        Assert.Contains("2 rounds × 3 repeats", repeated.Output);
        Assert.Matches(@"\d\.\d\d× \(\d\.\d\d–\d\.\d\d\)", repeated.Output);
        var refused = CliTests.Ffc("benchmark", "latency", path, "--repeats", "0");
        Assert.NotEqual(0, refused.Code);
        Assert.Contains("--repeats must be at least 1", refused.Output);
    }
}
