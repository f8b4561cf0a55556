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
    [Fact]
    public void LatencyBenchmark_TimesAnyOnnxModel_WithMadeUpOrGivenInputs()
    {
        // A recogniser, not a swapper: its own input name and shape, made-up values.
        var recogniser = TestAssets.Assets.IdentityEmbedder;
        var (code, text) = CliTests.Ffc("benchmark", "latency", recogniser, "--rounds", "3");
        Assert.True(code == 0, text);
        Assert.Contains(Path.GetFileName(recogniser), text);

        // Given inputs: an .npy file of the right size runs and one of the wrong size is refused naming the file.
        using var probe = new OrtTimedModel(recogniser);
        var (name, dims) = Assert.Single(probe.InputShapes);
        Assert.Equal(1, dims[0]);
        var dir = TestAssets.TempDir();
        var good = Path.Combine(dir, "face.npy");
        WriteNpy(good, dims, dims.Aggregate(1, (a, d) => a * d));
        var given = CliTests.Ffc("benchmark", "latency", recogniser, "--rounds", "2", "--input", $"{name}={good}");
        Assert.True(given.Code == 0, given.Output);
        var bad = Path.Combine(dir, "short.npy");
        WriteNpy(bad, [7], 7);
        var refused = CliTests.Ffc("benchmark", "latency", recogniser, "--rounds", "2", "--input", $"{name}={bad}");
        Assert.Equal(1, refused.Code);
        Assert.Contains($"error: {bad}: holds 7 floats", refused.Output);
        var unknown = CliTests.Ffc("benchmark", "latency", recogniser, "--shape", "nope=1x3x8x8");
        Assert.Equal(1, unknown.Code);
        Assert.Contains("'nope': none of the models has an input of that name", unknown.Output);
        Assert.Throws<ArgumentException>(() => OrtTimedModel.ParseShape("input=1x0x3"));
        Assert.Equal(new[] { 2, 3, 112, 112 }, OrtTimedModel.ParseShape("input=2x3x112x112").Dims);
        // Raw float32 reads the same values as the .npy holds.
        var raw = Path.Combine(dir, "face.f32");
        var values = OrtTimedModel.ReadFloats(good);
        File.WriteAllBytes(raw, values.SelectMany(BitConverter.GetBytes).ToArray());
        Assert.Equal(values, OrtTimedModel.ReadFloats(raw));
    }

    [Fact]
    public void Bench_OfAModelThatIsNotASwapper_TimesIt_AndLeavesQualityEmpty()
    {
        var dir = TestAssets.TempDir();
        var recogniser = TestAssets.Assets.IdentityEmbedder;
        var (code, text) = CliTests.Ffc("bench", recogniser, "--runs", "8", "--baseline", recogniser, "-o", dir);
        Assert.True(code == 0, text);
        Assert.Contains("not a swapper", text);
        using var reader = CsvHelper.CsvReader.FromFile(Path.Combine(dir, "bench.csv"));
        var row = Assert.Single(reader.GetRecords<FaceFusion.Compress.Reporting.BenchRow>());
        Assert.Equal("fp32", row.Precision);
        Assert.Equal(112, row.Resolution);
        Assert.True(row.P50Ms > 0 && row.P99Ms >= row.P50Ms && row.Fps > 0, $"p50 {row.P50Ms} p99 {row.P99Ms}");
        Assert.True(row.Params > 1_000_000, row.Params.ToString());
        Assert.Equal(new FileInfo(recogniser).Length, row.FileBytes);
        Assert.True(double.IsNaN(row.PsnrDb) && double.IsNaN(row.IdCosine));
        Assert.Null(row.JudgeSourceRate);
        Assert.DoesNotContain("slices of", text);

        // A swapper is benched on the dataset's faces: made-up input options are refused for it.
        var swapper = Path.Combine(dir, "student-32.onnx");
        using (var model = ExportParityTests.Prepared(SwapperArchitectures.Student(32))) OnnxExporter.ExportToFile(model, swapper);
        var refused = CliTests.Ffc("bench", swapper, "--shape", "target=1x3x32x32", "-o", dir);
        Assert.Equal(1, refused.Code);
        Assert.Contains("--shape and --input are for other models", refused.Output);
    }

    /// <summary>A version-1 .npy of <paramref name="count"/> float32 values 0, 0.001, … with shape <paramref name="dims"/>.</summary>
    private static void WriteNpy(string path, int[] dims, int count)
    {
        var header = $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({string.Join(", ", dims)}{(dims.Length == 1 ? "," : "")}), }}";
        header = header.PadRight(((10 + header.Length + 1 + 63) / 64) * 64 - 10 - 1) + "\n";
        using var stream = File.Create(path);
        stream.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0]);
        stream.Write(BitConverter.GetBytes((ushort)header.Length));
        stream.Write(System.Text.Encoding.ASCII.GetBytes(header));
        for (int i = 0; i < count; i++) stream.Write(BitConverter.GetBytes(i * 0.001f));
    }
}
