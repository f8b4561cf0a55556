using System.Globalization;
using FaceFusion.Compress.Models.Architectures;
using FaceFusion.Compress.Models.Checkpoints;
using FaceFusion.Compress.Models.Graph;
using FaceFusion.Compress.Quantization;
using FaceFusion.Compress.Tests.Export;
using FaceFusion.Compress.Tests.Models;
using FaceFusion.Compress.Training;
using Google.Protobuf;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Tests.Quantization;

public class QatTests
{
    private static float MaxAbsDiff(Tensor a, Tensor b) => a.sub(b).abs().max().item<float>();

    [Theory]
    [InlineData("teacher")]
    [InlineData("student")]
    public void BatchNormFolding_LeavesOutputsUnchanged(string name)
    {
        using var model = ExportParityTests.Prepared(SwapperArchitectures.Build(name, 32));
        using var folded = BatchNormFolding.Fold(model);
        int batchNorms = model.Graph.Nodes.Count(n => n.Op == Ops.BatchNorm);
        Assert.True(batchNorms > 0);
        Assert.Equal(batchNorms, BatchNormFolding.Foldable(model.Graph).Count);
        Assert.DoesNotContain(folded.Graph.Nodes, n => n.Op == Ops.BatchNorm);
        using var scope = NewDisposeScope();
        var inputs = GraphTests.SwapperInputs(2, 32, seed: 5);
        using var _ = no_grad();
        var expected = model.call(inputs);
        var actual = folded.call(inputs);
        foreach (var key in expected.Keys)
            Assert.True(MaxAbsDiff(expected[key], actual[key]) <= 1e-5, $"{name} {key}: {MaxAbsDiff(expected[key], actual[key])}");
    }

    [Fact]
    public void BatchNormWithZeroWeightAndZeroRangeActivations_NeverGiveNaN()
    {
        using var model = ExportParityTests.Prepared(SwapperArchitectures.Student(32));
        using (no_grad())
            ((BatchNorm2d)model.NodeModule("stem_bn")).weight!.zero_(); // the stem then outputs a constant: a zero-range activation downstream
        using var folded = BatchNormFolding.Fold(model);
        Assert.All(folded.parameters(), p => Assert.False(p.isnan().any().item<bool>()));
        var policy = new QuantPolicy();
        var values = policy.QuantizedValues(folded.Graph);
        // Every range degenerate (0, 0): tiny positive scales, no division by zero.
        using var simulator = new QuantSimulator(folded.Graph, policy, values.ToDictionary(v => v, _ => QuantParams.Uint8(0, 0)));
        folded.Quantization = simulator;
        folded.train();
        using var scope = NewDisposeScope();
        var inputs = GraphTests.SwapperInputs(2, 32, seed: 6);
        var output = folded.call(inputs)["output"];
        Assert.False(output.isnan().any().item<bool>());
        output.sum().backward();
        Assert.All(folded.parameters().Where(p => p.grad is not null), p => Assert.False(p.grad!.isnan().any().item<bool>()));
        Assert.All(simulator.ActivationParams().Values, p => Assert.True(float.IsFinite(p.Scale) && p.Scale > 0));
    }

    [Fact]
    public void LearnableScale_GetsTheLsqGradient_AndInputsOutsideTheRangeNone()
    {
        using var scope = NewDisposeScope();
        var x = tensor(new[] { -0.5f, 0.2f, 0.7f, 1.5f }, requires_grad: true);
        var scale = tensor(1f / 255, requires_grad: true);
        var y = QuantSimulator.FakeQuantize(x, scale, 0, 0, 255, learnable: true);
        Assert.Equal(new[] { 0f, 0.2f, 0.7f, 1f }, y.data<float>().ToArray(), (a, b) => Math.Abs(a - b) < 2.5e-3);
        y.sum().backward();
        Assert.Equal([0f, 1f, 1f, 0f], x.grad!.data<float>().ToArray());
        // d/ds of (clamp(round(x/s)) )·s: round(x/s) − x/s inside, qmin or qmax outside; times LSQ's 1/√(numel·qmax).
        float s = 1f / 255;
        double expected = new[] { -0.5f, 0.2f, 0.7f, 1.5f }.Sum(v => v / s < 0 ? 0 : v / s > 255 ? 255 : Math.Round(v / s) - v / s) / Math.Sqrt(4 * 255);
        Assert.Equal(expected, scale.grad!.item<float>(), 2);
    }

    [Fact]
    public void EntropyCalibration_ClipsRareOutliers_KeepsTheBulk()
    {
        var rng = new Random(2);
        var samples = Enumerable.Range(0, 100_000).Select(_ => (float)Math.Abs(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()))).ToList();
        samples.Add(100f);
        var (lo, hi) = Calibrator.EntropyRange(samples, 0, 100);
        Assert.Equal(0, lo);
        Assert.InRange(hi, 2.5, 20); // far below the outlier, above ~99 % of |N(0,1)|
        var (lo2, hi2) = Calibrator.EntropyRange(samples.Select((v, i) => i % 2 == 0 ? v : -v).ToList(), -100, 100);
        Assert.True(lo2 < -2.5 && lo2 > -20 && hi2 > 2.5 && hi2 < 20, $"({lo2}, {hi2})");
    }

    /// <summary>KL(p‖q) of the KL method for keeping <paramref name="kept"/> bins, written from its definition.</summary>
    private static double KlOfCandidate(double[] hist, int kept, int levels)
    {
        // p: hist[:kept], the outliers hist[kept:] added to its last bin.
        var p = hist.Take(kept).ToArray();
        p[kept - 1] += hist.Skip(kept).Sum();
        // q: the unfolded hist[:kept] merged into `levels` groups (bin j is in group ceil((j+1)·levels/kept) − 1), each
        // group's mass shared equally by its bins where p is non-empty.
        int Group(int j) => (int)Math.Ceiling((j + 1) * (double)levels / kept - 1e-9) - 1;
        var mass = new Dictionary<int, double>();
        var members = new Dictionary<int, int>();
        for (int j = 0; j < kept; j++)
        {
            mass[Group(j)] = mass.GetValueOrDefault(Group(j)) + hist[j];
            if (p[j] > 0) members[Group(j)] = members.GetValueOrDefault(Group(j)) + 1;
        }
        var q = Enumerable.Range(0, kept).Select(j => p[j] > 0 ? mass[Group(j)] / members[Group(j)] : 0).ToArray();
        double sp = p.Sum(), sq = q.Sum();
        return Enumerable.Range(0, kept).Where(j => p[j] > 0).Sum(j => p[j] / sp * Math.Log(p[j] / sp / Math.Max(q[j] / sq, 1e-12)));
    }

    [Theory]
    [InlineData(128)]
    [InlineData(255)]
    public void EntropyCalibration_ChoosesTheKlOptimum_OnAHistogramWithKnownOutliers(int levels)
    {
        // A bulk over the first 600 of 2048 bins (a half-Gaussian, as |activations| look) and a few far outliers.
        const int bins = Calibrator.EntropyBins;
        var hist = new double[bins];
        for (int b = 0; b < 600; b++) hist[b] = Math.Round(2000 * Math.Exp(-Math.Pow(b / 220.0, 2)));
        hist[1500] = 3;
        hist[2047] = 2;
        var kl = Enumerable.Range(levels, bins - levels + 1).ToDictionary(i => i, i => KlOfCandidate(hist, i, levels));
        int optimum = kl.MinBy(kv => kv.Value).Key;
        Assert.Equal(optimum, Calibrator.EntropyThresholdBins(hist, levels));
        // The broken variant (q built from the folded p) always kept exactly `levels` bins, i.e. clipped at 1/16 (1/8) of the max.
        Assert.NotEqual(levels, optimum);
        Assert.InRange(optimum, 400, 1499); // keeps the bulk, drops the outliers

        // The same histogram as samples at bin centres, through EntropyRange: the threshold is the optimum's bin edge.
        const double absMax = 8.0;
        var samples = new List<float>();
        for (int b = 0; b < bins; b++)
            for (int k = 0; k < hist[b]; k++)
                samples.Add((float)((b + 0.5) / bins * absMax * (levels == 128 && k % 2 == 1 ? -1 : 1)));
        var (lo, hi) = levels == 128 ? Calibrator.EntropyRange(samples, -absMax, absMax) : Calibrator.EntropyRange(samples, 0, absMax);
        Assert.Equal((double)optimum / bins * absMax, hi, 9);
        Assert.Equal(levels == 128 ? -hi : 0, lo, 9);
    }

    [Fact]
    public void EntropyCalibration_WithoutOutliers_KeepsTheWholeBulk()
    {
        // Uniform values on [0, 5] of a range [0, 10]: the divergence is least once the whole bulk is kept, far above 1/8 of the max.
        var rng = new Random(4);
        var samples = Enumerable.Range(0, 50_000).Select(_ => (float)(rng.NextDouble() * 5)).ToList();
        var (_, hi) = Calibrator.EntropyRange(samples, 0, 10);
        Assert.InRange(hi, 4.9, 5.2);
    }

    [Theory]
    [InlineData("student", false)]
    [InlineData("student", true)]
    [InlineData("teacher", false)]
    public void QdqExport_MatchesTheFakeQuantSimulation_AtLeast35Db(string name, bool int8Skips)
    {
        using var model = ExportParityTests.Prepared(SwapperArchitectures.Build(name, 32));
        var config = PostTrainingQuantizer.Config(8, CalibrationMethod.MinMax, new QuantPolicy { QuantizeSkips = int8Skips });
        var prepared = PostTrainingQuantizer.Prepare(model, config, TinyDataset.Path, 1);
        using var folded = prepared.Model;
        using var simulator = prepared.Simulator;
        var bytes = PostTrainingQuantizer.Export(prepared, 8, CalibrationMethod.MinMax).ToByteArray();
        using var scope = NewDisposeScope();
        var inputs = GraphTests.SwapperInputs(2, 32, seed: 3);
        Dictionary<string, Tensor> simulated, reference;
        using (no_grad())
        {
            simulated = folded.call(inputs);
            folded.Quantization = null;
            reference = folded.call(inputs);
            folded.Quantization = simulator;
        }
        var ort = ExportParityTests.RunOrt(bytes, inputs);
        double parity = ExportParityTests.Psnr(simulated["output"].data<float>().ToArray(), ort["output"]);
        double vsFloat = ExportParityTests.Psnr(reference["output"].data<float>().ToArray(), ort["output"]);
        Assert.True(parity >= 35, $"{name}: ORT INT8 vs fake-quant {parity:0.0} dB (vs float {vsFloat:0.0} dB)");
        // The same on real faces, through the library's own check.
        double real = QuantAnalysis.Parity(folded, bytes, TinyDataset.Path, faces: 4);
        Assert.True(real >= 35, $"{name}: on real faces {real:0.0} dB");
    }

    [Fact]
    public void MixedPrecisionPolicy_KeepsNamedNodesFloat_InTheSimulationAndTheExport()
    {
        using var model = ExportParityTests.Prepared(SwapperArchitectures.Student(32));
        var config = PostTrainingQuantizer.Config(4, CalibrationMethod.MinMax, new QuantPolicy { KeepFloat = new HashSet<string> { "dec2_pw" } });
        var prepared = PostTrainingQuantizer.Prepare(model, config, TinyDataset.Path, 1);
        using var folded = prepared.Model;
        using var simulator = prepared.Simulator;
        using var scope = NewDisposeScope();
        var x = randn(1, 120, 8, 8);
        var node = folded.Graph.Node("dec2_pw");
        // The kept-float conv computes in float (its weights only rounded to the FP16 they are stored in).
        var conv = (Conv2d)folded.NodeModule("dec2_pw");
        var keptFloat = simulator.Conv(node, conv, x) ?? conv.call(x);
        Assert.True(MaxAbsDiff(keptFloat, conv.call(x)) <= 2e-3 * conv.call(x).abs().max().item<float>());
        Assert.NotNull(simulator.Conv(folded.Graph.Node("dec3_pw"), (Conv2d)folded.NodeModule("dec3_pw"), randn(1, 208, 4, 4)));
        // Only quantized convs' inputs and outputs are quantized: a residual add read by identity injection stays float.
        var convValues = new QuantPolicy().QuantizedConvs(folded.Graph).SelectMany(c => c.Inputs.Append(c.Name)).ToHashSet();
        Assert.DoesNotContain("res0_add", simulator.Values);
        Assert.All(simulator.Values, v => Assert.True(convValues.Contains(v) || folded.Graph.Nodes.Any(n => n.Name == v && n.Op == Ops.Act), v));
        var proto = PostTrainingQuantizer.Export(prepared, 4, CalibrationMethod.MinMax);
        Assert.Contains(proto.Graph.Initializer, t => t.Name is "dec2_pw.weight" or "dec2_pw.weight_fp16"); // float compute; large weights stored FP16
        Assert.DoesNotContain(proto.Graph.Initializer, t => t.Name == "dec2_pw.weight_q");
        Assert.Contains(proto.Graph.Initializer, t => t.Name == "dec3_pw.weight_q");
        var policy = proto.MetadataProps.First(p => p.Key == "quantization_policy").Value;
        Assert.Contains("dec2_pw", policy);
        Assert.Contains("dec3_attn", policy); // listed among the float nodes
    }

    [Fact]
    public void SensitivityMode_KeepsTheConvsWithTheLargestDropFloat_AndSqnrCoversEveryValue()
    {
        using var model = ExportParityTests.Prepared(SwapperArchitectures.Student(32));
        var config = PostTrainingQuantizer.Config(4, CalibrationMethod.MinMax, sensitivityKeep: 2);
        config.SensitivityFaces = 4;
        var prepared = PostTrainingQuantizer.Prepare(model, config, TinyDataset.Path, 1);
        using var folded = prepared.Model;
        using var simulator = prepared.Simulator;
        var rows = prepared.Sensitivity!;
        Assert.Equal(new QuantPolicy().QuantizedConvs(folded.Graph).Count, rows.Count);
        var worst = rows.OrderByDescending(r => r.PsnrDropDb).Take(2).Select(r => r.Node).ToHashSet();
        Assert.Equal(worst, simulator.Policy.KeepFloat.ToHashSet());
        Assert.All(rows, r => Assert.True(double.IsFinite(r.PsnrDb) && double.IsFinite(r.PsnrVsFloatDb)));

        var sqnr = QuantAnalysis.Sqnr(folded, simulator, TinyDataset.Path, faces: 4);
        var inputs = folded.Graph.Inputs.Select(i => i.Name).ToHashSet();
        Assert.Equal(simulator.Values.Count(v => !inputs.Contains(v)) + folded.Graph.Outputs.Count, sqnr.Count);
        Assert.All(sqnr, r => Assert.True(double.IsFinite(r.SqnrDb), r.Node));
        Assert.Contains(sqnr, r => r.Node == "output" && r.SqnrDb is > 5 and < 100);
        var dir = TestAssets.TempDir();
        var csv = File.ReadAllLines(QuantAnalysis.WriteSqnr(dir, sqnr));
        Assert.Equal("node,op,sqnr_db", csv[0]);
        Assert.Equal("node,psnr_db,psnr_drop_db,psnr_vs_float_db", File.ReadLines(QuantAnalysis.WriteSensitivity(dir, rows)).First());
    }

    [Fact]
    public void SqnrFloor_PassesWhenEveryValueClearsIt_AndOtherwiseNamesTheWorstValues()
    {
        var rows = new List<SqnrRow> { new("conv_a", "conv", 8.5), new("conv_b", "conv", 19.9), new("add_c", "add", 35), new("output", "output (conv)", 24) };
        QuantAnalysis.RequireSqnrFloor(rows, 5, "m");
        var error = Assert.Throws<SqnrFloorException>(() => QuantAnalysis.RequireSqnrFloor(rows, 20, "teacher-128", "q/quant_sqnr.csv"));
        Assert.StartsWith("teacher-128: INT8 SQNR below the 20 dB floor at 2 of 4 values, worst conv_a (conv) 8.5 dB, conv_b (conv) 19.9 dB", error.Message);
        Assert.DoesNotContain("add_c", error.Message);
        Assert.Contains("q/quant_sqnr.csv", error.Message);
        // A simulation that is not finite never passes, whatever the floor.
        Assert.Throws<SqnrFloorException>(() => QuantAnalysis.RequireSqnrFloor([new("conv_a", "conv", double.NaN)], -1000, "m"));
        Assert.Equal(200, QuantAnalysis.SqnrDb(4, 0));
        Assert.Equal(20, QuantAnalysis.SqnrDb(100, 1), 6);
        Assert.True(double.IsNaN(QuantAnalysis.SqnrDb(double.PositiveInfinity, 1)));
    }

    [Fact]
    public void PtqCommand_BelowTheSqnrFloor_StopsNamingTheNode_AndWritesNoModel()
    {
        var root = TestAssets.TempDir();
        var floatDir = Path.Combine(root, "float");
        using (var model = ExportParityTests.Prepared(SwapperArchitectures.Student(32))) Checkpoint.Save(floatDir, model);
        var output = Path.Combine(root, "out", "int8.onnx");
        var (code, text) = Tests.Cli.CliTests.Ffc("ptq", floatDir, "--calibration", "8", "--dataset", TinyDataset.Path, "--min-sqnr", "150", "-o", output);
        Assert.Equal(1, code);
        var line = Assert.Single(text.Split('\n'), l => l.StartsWith("error:"));
        Assert.Matches(@"^error: .*float: INT8 SQNR below the 150 dB floor at \d+ of \d+ values, worst \S+ \(\w+", line);
        Assert.False(File.Exists(output), "a model below the floor was written");
        var worst = File.ReadLines(Path.Combine(root, "out", "quant_sqnr.csv")).Skip(1).First().Split(',')[0];
        Assert.Contains($"worst {worst} (", line);

        var (ok, okText) = Tests.Cli.CliTests.Ffc("ptq", floatDir, "--calibration", "8", "--dataset", TinyDataset.Path, "--min-sqnr", "0", "-o", output);
        Assert.True(ok == 0, okText);
        Assert.True(File.Exists(output));
        var (nan, nanText) = Tests.Cli.CliTests.Ffc("ptq", floatDir, "--min-sqnr", "NaN", "-o", Path.Combine(root, "nan.onnx"));
        Assert.NotEqual(0, nan);
        Assert.Contains("--min-sqnr", nanText);
        Assert.False(File.Exists(Path.Combine(root, "nan.onnx")));
    }

    private static TrainConfig QatConfig(string output, string model) => new()
    {
        Model = model, Teacher = model, Resolution = 32, Data = TinyDataset.Path, Output = output, Seed = 3, BatchSize = 4,
        Phases = [new TrainPhase { Resolution = 32, Steps = 4 }], AdversarialStartStep = 100, CheckpointEvery = 2,
        SampleEvery = 2, EvalPairs = 4, EvalSplit = "train", Threads = 2, Optimizer = new OptimizerConfig { Lr = 1e-4, Beta1 = 0.9 },
        Qat = new QatConfig { Calibration = 8, FreezeObserversAfter = 3 },
    };

    [Fact]
    public void Qat_ResumesExactly_AndExportsWhatItTrained()
    {
        var root = TestAssets.TempDir();
        var floatDir = Path.Combine(root, "float");
        using (var model = ExportParityTests.Prepared(SwapperArchitectures.Student(32))) Checkpoint.Save(floatDir, model);

        var straight = new SwapTrainer(QatConfig(Path.Combine(root, "straight"), floatDir), TestAssets.Assets, root);
        Assert.Equal(4, straight.Train(resume: false));
        var interrupted = new SwapTrainer(QatConfig(Path.Combine(root, "interrupted"), floatDir), TestAssets.Assets, root);
        Assert.Equal(2, interrupted.Train(resume: false, stopAfter: 2));
        Assert.Equal(4, interrupted.Train(resume: true));

        var (a, simA) = QuantizationAware.Load(straight.ModelDir);
        var (b, simB) = QuantizationAware.Load(interrupted.ModelDir);
        using (a) using (simA) using (b) using (simB)
        {
            Assert.DoesNotContain(a.Graph.Nodes, n => n.Op == Ops.BatchNorm);
            var stateB = b.state_dict();
            foreach (var (key, value) in a.state_dict())
                Assert.True(MaxAbsDiff(value, stateB[key]) <= 1e-5, $"{key} differs after resume");
            var paramsB = simB.ActivationParams();
            foreach (var (value, p) in simA.ActivationParams())
            {
                Assert.Equal(p.ZeroPoint, paramsB[value].ZeroPoint);
                Assert.Equal(p.Scale, paramsB[value].Scale, 5);
            }
            // Observers moved the calibrated ranges during the first 3 steps.
            var initial = QuantSimulator.ReadJson(File.ReadAllText(Path.Combine(straight.OutputDir, QuantizationAware.FileName)), "initial").Params;
            Assert.Contains(simA.ActivationParams(), kv => Math.Abs(kv.Value.Scale - initial[kv.Key].Scale) > 1e-7);

            var bytes = QuantizationAware.ExportInt8(a, simA).ToByteArray();
            Assert.True(QuantAnalysis.Parity(a, bytes, TinyDataset.Path, faces: 4) >= 35);
            Assert.True(PostTrainingQuantizer.InspectKernels(bytes).IntegerOps >= 20);
        }
        var metrics = File.ReadAllText(Path.Combine(straight.ModelDir, "metrics.json"));
        Assert.Contains("ReconstructionPsnr", metrics);
    }

    [Fact]
    public void QatModelFolder_WithAForeignQuantizationFile_IsRefusedByName()
    {
        var dir = Path.Combine(TestAssets.TempDir(), "qat");
        using (var original = ExportParityTests.Prepared(SwapperArchitectures.Student(32)))
        using (var model = BatchNormFolding.Fold(original))
            Checkpoint.Save(dir, model);
        File.WriteAllText(Path.Combine(dir, QuantizationAware.FileName), "{\"format\": \"something else\"}");
        var e = Assert.Throws<InvalidDataException>(() => QuantizationAware.Load(dir));
        Assert.Contains(QuantizationAware.FileName, e.Message);
        File.WriteAllText(Path.Combine(dir, QuantizationAware.FileName), "{\"format\": \"FaceFusion.Compress quantization\", \"keep_float\": [], \"quantize_skips\": false, \"values\": {\"target\": {\"scale\": 0.01, \"zero_point\": 128}}}");
        var missing = Assert.Throws<InvalidDataException>(() => QuantizationAware.Load(dir));
        Assert.Contains("no parameters for", missing.Message);
    }

    [Fact]
    public void QatCommand_TrainsExportsAndReportsParity_AndRefusesBadInput()
    {
        var root = TestAssets.TempDir();
        var floatDir = Path.Combine(root, "float");
        using (var model = ExportParityTests.Prepared(SwapperArchitectures.Student(32))) Checkpoint.Save(floatDir, model);
        var output = Path.Combine(root, "qat");
        var (code, text) = Tests.Cli.CliTests.Ffc("qat", floatDir, "--steps", "2", "--calibration", "4", "--calibration-method", "entropy", "--min-sqnr", "0",
            "--dataset", TinyDataset.Path, "-o", output);
        Assert.True(code == 0, text);
        Assert.Contains("parity ONNX Runtime INT8 vs TorchSharp fake-quant", text);
        Assert.True(File.Exists(Path.Combine(output, "model-int8.onnx")));
        Assert.Equal("node,op,sqnr_db", File.ReadLines(Path.Combine(output, "quant_sqnr.csv")).First());
        Assert.True(QuantizationAware.IsQuantized(Path.Combine(output, "model")));
        // The fair FP32 reference: the same trained weights exported without quantization, and both PSNRs printed.
        Assert.Matches(@"same weights on val: float \d+\.\d\d dB, INT8 \(simulated\) \d+\.\d\d dB", text);
        var sameWeights = Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(output, "model-fp32.onnx")));
        Assert.DoesNotContain(sameWeights.Graph.Node, n => n.OpType is "QuantizeLinear" or "DequantizeLinear");
        Assert.Contains(sameWeights.Graph.Node, n => n.OpType == "Conv");

        // `ffc export --precision int8` re-exports the QAT model at another resolution, with the same kernels; a float
        // checkpoint is refused there (INT8 needs calibration), nothing written.
        var at64 = Path.Combine(root, "int8-64.onnx");
        var (exported, exportText) = Tests.Cli.CliTests.Ffc("export", Path.Combine(output, "model"), "--precision", "int8", "-r", "64", "--opset", "13", "-o", at64);
        Assert.True(exported == 0, exportText);
        var int8At64 = Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(at64));
        Assert.Equal(13, int8At64.OpsetImport.Single(o => o.Domain == "").Version); // the asked opset, not the default 17
        Assert.Equal(64, int8At64.Graph.Input.Single(i => i.Name == "target").Type.TensorType.Shape.Dim[2].DimValue);
        var atTraining = Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(output, "model-int8.onnx")));
        Assert.Equal(atTraining.Graph.Node.Count(n => n.OpType == "QuantizeLinear"), int8At64.Graph.Node.Count(n => n.OpType == "QuantizeLinear"));
        var (refused, refusedText) = Tests.Cli.CliTests.Ffc("export", floatDir, "--precision", "int8", "-o", Path.Combine(root, "float-int8.onnx"));
        Assert.Equal(1, refused);
        Assert.Contains("is not a QAT model folder", refusedText);
        Assert.False(File.Exists(Path.Combine(root, "float-int8.onnx")));

        // A QAT model cannot be quantized again; a missing model and a bad option name their cause; nothing is written.
        var (again, againText) = Tests.Cli.CliTests.Ffc("qat", Path.Combine(output, "model"), "--steps", "1", "-o", Path.Combine(root, "again"));
        Assert.Equal(1, again);
        Assert.Contains("already a QAT model", againText);
        Assert.False(Directory.Exists(Path.Combine(root, "again")));
        var (missing, missingText) = Tests.Cli.CliTests.Ffc("qat", Path.Combine(root, "nope"), "-o", Path.Combine(root, "x"));
        Assert.Equal(1, missing);
        Assert.Contains("nope", missingText);
        var (badMethod, badText) = Tests.Cli.CliTests.Ffc("qat", floatDir, "--calibration-method", "magic", "--dataset", TinyDataset.Path, "-o", Path.Combine(root, "y"));
        Assert.NotEqual(0, badMethod);
        Assert.Contains("magic", badText);
        Assert.False(Directory.Exists(Path.Combine(root, "y")));
    }
}

public class UserOnnxPtqTests
{
    [Fact]
    public void Ptq_OfAUsersOwnOnnxCnn_RunsInt8KernelsAndStaysCloseToFp32()
    {
        // A real third-party CNN: the bundled ArcFace-style recogniser (112×112 input, (x − 127)/128).
        var dir = TestAssets.TempDir();
        var model = Path.Combine(dir, "recogniser.onnx");
        File.Copy(TestAssets.Assets.IdentityEmbedder, model);
        var output = Path.Combine(dir, "recogniser-int8.onnx");
        // Its embedding output reaches 12–14 dB SQNR at INT8 (cosine 0.97, what ONNX Runtime's own quantizer gets): an
        // embedding tolerates noise that an image would not, so the default 20 dB floor refuses it until lowered.
        var (refused, refusedText) = Tests.Cli.CliTests.Ffc("ptq", model, "--calibration", "16", "--mean", "127", "--std", "128", "--dataset", TinyDataset.Path, "-o", output);
        Assert.Equal(1, refused);
        Assert.Contains("below the 20 dB floor", refusedText);
        Assert.False(File.Exists(output));
        var (code, text) = Tests.Cli.CliTests.Ffc("ptq", model, "--calibration", "16", "--mean", "127", "--std", "128", "--min-sqnr", "10", "--dataset", TinyDataset.Path, "-o", output);
        Assert.True(code == 0, text);
        Assert.Matches(@"worst SQNR: \S+ 1\d\.\d dB", text);
        Assert.True(new FileInfo(output).Length < 0.35 * new FileInfo(model).Length, $"{new FileInfo(output).Length} vs {new FileInfo(model).Length}");
        Assert.True(PostTrainingQuantizer.InspectKernels(File.ReadAllBytes(output)).IntegerOps >= 10, text);
        var cosine = double.Parse(System.Text.RegularExpressions.Regex.Match(text, @"mean output cosine ([0-9.]+)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(cosine >= 0.95, text);

        // A model with a non-image input is refused by name.
        var (bad, badText) = Tests.Cli.CliTests.Ffc("ptq", TestAssets.Assets.Landmarks, "--calibration", "4", "--dataset", TinyDataset.Path, "-o", Path.Combine(dir, "x.onnx"));
        Assert.NotEqual(0, bad);
        Assert.Contains(Path.GetFileName(TestAssets.Assets.Landmarks), badText);
        Assert.False(File.Exists(Path.Combine(dir, "x.onnx")));
    }
}

public class PtqBenchmarkTests
{
    [Fact]
    public void PtqBenchmark_MeasuresEveryMethodOnBothModels_AndReportsTheFloors()
    {
        var root = TestAssets.TempDir();
        var teacher = Path.Combine(root, "tiny-teacher");
        using (var model = ExportParityTests.Prepared(SwapperArchitectures.Student(32))) Checkpoint.Save(teacher, model);
        var options = new PtqBenchmark.Options
        {
            Teacher = teacher, Recogniser = TestAssets.Assets.IdentityEmbedder, DataDir = TinyDataset.Path, OutputDir = Path.Combine(root, "out"),
            Calibration = 4, Pairs = 4, Rounds = 2, Repeats = 1, Split = "train",
        };
        var (rows, floors) = PtqBenchmark.Run(options);
        var methods = new[] { "fp32" }.Concat(PtqBenchmark.Methods);
        Assert.Equal(methods, rows.Where(r => r.Model == "tiny-teacher" && r.Path == "checkpoint").Select(r => r.Method));
        Assert.Equal(methods, rows.Where(r => r.Model == Path.GetFileNameWithoutExtension(TestAssets.Assets.IdentityEmbedder)).Select(r => r.Method));
        foreach (var r in rows.Where(r => r.Method != "fp32" && r.Note.Length == 0))
        {
            Assert.True(double.IsFinite(r.WorstSqnrDb), $"{r.Model} {r.Method}: SQNR");
            Assert.True(r.P50Ms > 0 && double.IsFinite(r.LatencyRatio), $"{r.Model} {r.Method}: latency");
            if (r.Model == "tiny-teacher") Assert.True(double.IsFinite(r.FidelityDb) && double.IsFinite(r.PsnrDb), $"{r.Method}: fidelity");
            // A broken recogniser (entropy calibration clips its last convs: cosine near 0) must be one the SQNR
            // floor refuses, never one that passes it silently.
            else Assert.True(r.OutputCosine is > 0.5 and <= 1.0 || r.WorstSqnrDb < QuantAnalysis.DefaultMinSqnrDb, $"{r.Method}: cosine {r.OutputCosine}, worst SQNR {r.WorstSqnrDb} dB");
        }
        Assert.All(rows.Where(r => r.Model != "tiny-teacher" && r.Method != "fp32"), r => Assert.True(r.SizeRatio < 0.5, $"{r.Method}: {r.SizeRatio}"));
        // The teacher's FP32 export through the importer: measured, or a row saying why not.
        var imported = Assert.Single(rows, r => r.Model == "tiny-teacher" && r.Path == "onnx");
        Assert.True(imported.Note.Length > 0 || double.IsFinite(imported.FidelityDb), "the imported row is neither measured nor explained");
        Assert.Contains(floors, f => f.Name.StartsWith("entropy within 1 dB of percentile") && f.Outcome is "met" or "NOT met");
        Assert.Contains(floors, f => f.Name.StartsWith("FP32 export through the importer") && f.Outcome is "met" or "NOT met" or "not measured");
        var header = File.ReadLines(Path.Combine(options.OutputDir, "ptq_benchmark.csv")).First();
        Assert.Equal("model,method,path,fidelity_db,psnr_db,output_cosine,worst_sqnr_db,file_bytes,size_ratio,p50_ms,latency_ratio,note,cpu", header);
    }
}
