using FaceFusion.Compress.Export;
using FaceFusion.Compress.Models.Architectures;
using FaceFusion.Compress.Models.Checkpoints;
using FaceFusion.Compress.Reporting;
using FaceFusion.Compress.Runtime;
using FaceFusion.Compress.Training;

namespace FaceFusion.Compress.Tests.Export;

public class BenchTests
{
    public static readonly string[] DocumentedColumns =
    [
        "model", "precision", "resolution", "params", "macs", "file_bytes", "load_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "fps",
        "batch8_fps", "parity_psnr_db", "max_abs_err", "psnr_db", "ssim", "id_cosine", "perceptual_distance", "psnr_vs_teacher_db",
        "threads", "provider", "machine_peak_gmacs", "achieved_gmacs", "peak_rss_mb",
    ];

    /// <summary>The issue-21 columns, appended after the older extensions (held-in pair set, crop path).</summary>
    public static readonly string[] JudgeColumns =
        ["judge_pairs", "judge_source_rate", "judge_target_rate", "judge_source_dist", "landmark_nme", "source_sensitivity", "hf_ratio", "swaps"];

    /// <summary>
    /// A swapper whose output is its target (one Identity node; the source is read by nothing), with a dynamic batch:
    /// the copy-target baseline as an ONNX model.
    /// </summary>
    public static string CopyTargetModel(string dir, int r)
    {
        var model = new Onnx.ModelProto { IrVersion = 8, Graph = new Onnx.GraphProto { Name = "copy" } };
        model.OpsetImport.Add(new Onnx.OperatorSetIdProto { Version = 17 });
        Onnx.ValueInfoProto Info(string name, params long[] dims)
        {
            var shape = new Onnx.TensorShapeProto();
            foreach (var d in dims) shape.Dim.Add(d < 0 ? new Onnx.TensorShapeProto.Types.Dimension { DimParam = "N" } : new Onnx.TensorShapeProto.Types.Dimension { DimValue = d });
            return new Onnx.ValueInfoProto { Name = name, Type = new Onnx.TypeProto { TensorType = new Onnx.TypeProto.Types.Tensor { ElemType = 1, Shape = shape } } };
        }
        model.Graph.Input.Add(Info("target", -1, 3, r, r));
        model.Graph.Input.Add(Info("source", -1, 512));
        model.Graph.Output.Add(Info("output", -1, 3, r, r));
        var copy = new Onnx.NodeProto { OpType = "Identity", Name = "copy" };
        copy.Input.Add("target"); copy.Output.Add("output");
        model.Graph.Node.Add(copy);
        var path = Path.Combine(dir, "copies-its-target.onnx");
        File.WriteAllBytes(path, Google.Protobuf.MessageExtensions.ToByteArray(model));
        return path;
    }

    [Fact]
    public void Bench_FlagsAModelThatCopiesItsTarget_AsDoesNotSwap_BesideItsCopyTargetRow()
    {
        var dir = TestAssets.TempDir();
        var options = new BenchOptions
        {
            ModelPath = CopyTargetModel(dir, 64), DataDir = TinyDataset.Path, Split = "train", Pairs = 4, JudgePairs = 4, Runs = 50,
            Ort = new OrtSettings { IntraOpThreads = 2 },
        };
        var result = SwapBench.Run(options, TestAssets.Assets);
        var copyTarget = Assert.Single(result.Judge, j => j.Model == SwapJudging.CopyTarget);
        var model = Assert.Single(result.Judge, j => j.Model == "copies-its-target");
        Assert.Equal(SwapJudging.HeldIn, model.PairSet);
        Assert.Equal(4, model.Pairs);
        Assert.Equal("baseline", copyTarget.Swaps);
        Assert.Equal("no", model.Swaps);
        Assert.Equal(copyTarget.JudgeSourceRate, model.JudgeSourceRate, 9);
        Assert.Equal(0, model.SourceSensitivity!.Value, 9);
        Assert.Equal(1, model.HfRatio!.Value, 6);
        // The tiny dataset has no still photos: the unseen set is named as not measured, not silently left out.
        Assert.Contains(result.JudgeNotes, n => n.StartsWith(SwapJudging.Unseen + ":"));
        Assert.Equal("no", result.Row.Swaps);
        Assert.Equal(4, result.Row.JudgePairs);
        Assert.Equal(model.JudgeSourceRate, result.Row.JudgeSourceRate);

        var outDir = Path.Combine(dir, "bench");
        BenchReport.Write(outDir, result);
        var md = File.ReadAllText(Path.Combine(outDir, BenchReport.BenchMarkdown));
        Assert.Contains("| copy-target | held_in | crop | 4 |", md);
        Assert.Contains("**does not swap**", md);
        var judge = File.ReadAllLines(Path.Combine(outDir, BenchReport.JudgeCsv));
        Assert.StartsWith("model,pair_set,path,pairs,judge_source_rate", judge[0]);
        Assert.Equal(3, judge.Length); // header, copy-target, the model
        Assert.EndsWith(",no", File.ReadAllLines(Path.Combine(outDir, BenchReport.BenchCsv))[1]);

        // A recipe's later models reuse the first bench's copy-target row; another pair count is measured again.
        using var swapper = new OrtSwapper(options.ModelPath);
        using var data = new FaceSwapData(TinyDataset.Path, "train", 64);
        var reused = SwapBench.JudgeSwaps("again", swapper, data, options with { CopyTargetJudge = result.Judge }, TestAssets.Assets);
        Assert.Same(copyTarget, reused.Rows[0]);
        var remeasured = SwapBench.JudgeSwaps("again", swapper, data, options with { CopyTargetJudge = result.Judge, JudgePairs = 2 }, TestAssets.Assets);
        Assert.NotSame(copyTarget, remeasured.Rows[0]);
        Assert.Equal(2, remeasured.Rows[0].Pairs);
    }

    [Fact]
    public void Bench_WithTheTrainingEmbedder_EmbedsSourcesAndMeasuresIdentityWithIt_AndWarnsOtherwise()
    {
        var dir = TestAssets.TempDir();
        var custom = Path.Combine(dir, "custom-recogniser.onnx");
        File.Copy(TestAssets.Assets.IdentityEmbedder, custom);
        var model = Path.Combine(dir, "student.onnx");
        using (var m = ExportParityTests.Prepared(SwapperArchitectures.Student(32)))
            OnnxExporter.ExportToFile(m, model, new ExportOptions { Metadata = new Dictionary<string, string> { ["embedder"] = "custom-recogniser.onnx (sha256 0, insightface normalisation, arcface_112_v2)" } });
        var options = new BenchOptions { ModelPath = model, DataDir = TinyDataset.Path, Split = "train", Pairs = 4, JudgePairs = 2, Runs = 50, Ort = new OrtSettings { IntraOpThreads = 2 } };

        var bundled = SwapBench.Run(options, TestAssets.Assets);
        Assert.NotNull(bundled.EmbedderMismatch);
        Assert.Contains("custom-recogniser.onnx", bundled.EmbedderMismatch);
        var trained = SwapBench.Run(options with { Embedder = custom, EmbedderNormalization = "insightface" }, TestAssets.Assets);
        Assert.Null(trained.EmbedderMismatch);
        // Another normalisation changes both the source embeddings and the measurement: identity cosine moves.
        Assert.True(double.IsFinite(trained.Row.IdCosine));
        Assert.NotEqual(bundled.Row.IdCosine, trained.Row.IdCosine, 4);
    }

    [Fact]
    public void Bench_WritesTheDocumentedColumnsWithSaneValues()
    {
        var dir = TestAssets.TempDir();
        var checkpoint = Path.Combine(dir, "student");
        using (var model = ExportParityTests.Prepared(SwapperArchitectures.Student(32)))
        {
            Checkpoint.Save(checkpoint, model);
            OnnxExporter.ExportToFile(model, Path.Combine(dir, "student.onnx"));
            OnnxExporter.ExportToFile(model, Path.Combine(dir, "student-fp16.onnx"), new ExportOptions { Precision = ExportPrecision.Fp16 });
        }
        var options = new BenchOptions
        {
            ModelPath = Path.Combine(dir, "student.onnx"), Reference = checkpoint, Teacher = Path.Combine(dir, "student-fp16.onnx"),
            DataDir = TinyDataset.Path, Split = "train", Pairs = 4, JudgePairs = 4, Runs = 50, Ort = new OrtSettings { IntraOpThreads = 2 },
        };
        var result = SwapBench.Run(options, TestAssets.Assets);
        var outDir = Path.Combine(dir, "bench");
        BenchReport.Write(outDir, result);
        BenchReport.Write(outDir, SwapBench.Run(options with { ModelPath = Path.Combine(dir, "student-fp16.onnx"), Teacher = null }, TestAssets.Assets));

        var lines = File.ReadAllLines(Path.Combine(outDir, BenchReport.BenchCsv));
        Assert.Equal(DocumentedColumns, lines[0].Split(',').Take(DocumentedColumns.Length));
        // Older extensions keep their place; the judge's columns come last, in this order.
        var header = lines[0].Split(',');
        Assert.Equal("cpu", header[^(JudgeColumns.Length + 1)]);
        Assert.Equal(JudgeColumns, header.TakeLast(JudgeColumns.Length));
        Assert.Equal(3, lines.Length); // header + one row per run, appended
        var row = result.Row;
        Assert.Equal("student", row.Model);
        Assert.Equal("fp32", row.Precision);
        Assert.Equal(32, row.Resolution);
        Assert.Equal(new FileInfo(options.ModelPath).Length, row.FileBytes);
        Assert.True(row.Params > 0 && row.Macs > 0);
        Assert.True(row.LoadMs > 0);
        Assert.True(row.P50Ms > 0 && row.P50Ms <= row.P90Ms && row.P90Ms <= row.P95Ms && row.P95Ms <= row.P99Ms);
        Assert.Equal(1000 / row.P50Ms, row.Fps, 6);
        Assert.True(row.Batch8Fps > 0);
        Assert.True(row.ParityPsnrDb >= 60, $"parity {row.ParityPsnrDb}");
        Assert.True(row.MaxAbsErr < 1e-3);
        Assert.InRange(row.PsnrDb, 0, 100);
        Assert.InRange(row.Ssim, -1, 1);
        Assert.InRange(row.IdCosine, -1, 1);
        Assert.True(row.PerceptualDistance > 0);
        Assert.True(row.PsnrVsTeacherDb >= 35, $"fp32 vs fp16 copy {row.PsnrVsTeacherDb}");
        Assert.True(row.MachinePeakGmacs > row.AchievedGmacs && row.AchievedGmacs > 0);
        Assert.Equal(2, row.Threads);
        Assert.Equal("CPUExecutionProvider", row.Provider);
        Assert.True(row.PeakRssMb > 10);
        Assert.True(row.TorchP50Ms > 0, "TorchSharp eager latency is measured with --reference");

        var slices = File.ReadAllLines(Path.Combine(outDir, BenchReport.SlicesCsv));
        Assert.Equal("model,slice,count,psnr_db,ssim,id_cosine", slices[0]);
        Assert.Contains(slices, l => l.StartsWith("student,low_light,4,"));
        Assert.Contains(slices, l => l.StartsWith("student,occlusion,4,"));
        Assert.True(File.Exists(Path.Combine(outDir, BenchReport.QualityPlot)));
        Assert.True(File.Exists(Path.Combine(outDir, BenchReport.LatencyPlot("student"))));
        Assert.Contains("student-fp16", File.ReadAllText(Path.Combine(outDir, BenchReport.BenchMarkdown)));

        var throughput = File.ReadAllLines(Path.Combine(outDir, BenchReport.ThroughputCsv));
        Assert.Equal("model,callers,requests,intra_op_threads,images_per_s,p50_ms", throughput[0]);
        Assert.Equal([1, 2, 4, 8], result.Throughput.Select(t => t.Callers));
        Assert.All(result.Throughput, t => Assert.True(t.ImagesPerS > 0 && t.Requests == 12 * t.Callers));
        Assert.Equal(9, throughput.Length); // two models × four caller counts
        Assert.False(string.IsNullOrEmpty(row.Cpu));
        // The judge's held-in columns are filled and a copy-target row stands beside the model in judge.csv.
        Assert.Equal(4, row.JudgePairs);
        Assert.InRange(row.JudgeSourceRate!.Value, 0, 1);
        Assert.InRange(row.JudgeTargetRate!.Value, 0, 1 - row.JudgeSourceRate.Value + 1e-9);
        Assert.True(row.JudgeSourceDist > 0 && row.LandmarkNme >= 0 && row.SourceSensitivity >= 0 && row.HfRatio > 0);
        Assert.Contains(row.Swaps, new[] { "yes", "no" });
        var judge = File.ReadAllLines(Path.Combine(outDir, BenchReport.JudgeCsv));
        Assert.Equal(2, judge.Count(l => l.StartsWith("copy-target,held_in,crop,4,"))); // one per bench
        Assert.Contains(judge, l => l.StartsWith("student,held_in,crop,4,"));
    }

    [Fact]
    public void Bench_RefusesANonSwapperModel()
    {
        var e = Assert.Throws<InvalidDataException>(() => new OrtSwapper(TestAssets.Assets.IdentityEmbedder));
        Assert.Contains("not a face swapper", e.Message);
        Assert.Contains("fr_feature.onnx", e.Message);
    }
}
