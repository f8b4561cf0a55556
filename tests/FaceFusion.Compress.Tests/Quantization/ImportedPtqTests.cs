using FaceFusion.Compress.Data;
using FaceFusion.Compress.Export;
using FaceFusion.Compress.Models.Architectures;
using FaceFusion.Compress.Models.Graph;
using FaceFusion.Compress.Models.Import;
using FaceFusion.Compress.Models.Networks;
using FaceFusion.Compress.Quantization;
using FaceFusion.Compress.Tests.Export;
using FaceFusion.Compress.Training;
using Google.Protobuf;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Tests.Quantization;

/// <summary>PTQ of ONNX files (the toolkit's own swapper exports, recognisers) by their IO convention.</summary>
public class ImportedPtqTests
{
    private static string ExportSwapTeacher(string name)
    {
        using var model = ExportParityTests.Prepared(SwapperArchitectures.SwapTeacher(32));
        var path = Path.Combine(TestAssets.TempDir(), name);
        OnnxExporter.ExportToFile(model, path);
        return path;
    }

    [Fact]
    public void Ptq_OfAnExportedSwapper_CalibratesOnPairsAndComparesTheOutput()
    {
        var path = ExportSwapTeacher("swap-teacher-32.onnx");
        var config = PostTrainingQuantizer.Config(16, CalibrationMethod.MinMax);
        var result = ImportedModelQuantizer.Quantize(path, TinyDataset.Path, config);

        // The preset comes from the export's own metadata (arcface_128 template, target + source).
        var swapper = Assert.IsType<SwapperIoPreset>(result.Preset);
        Assert.Equal("output", swapper.Output);
        Assert.Equal(32, result.Size);
        Assert.Equal(["target", "source"], result.Model.Graph.Input.Select(i => i.Name));
        Assert.Contains(result.Model.MetadataProps, p => p.Key == ModelIoPreset.MetadataKey && p.Value == "swapper");
        Assert.Contains(result.Model.Graph.Node, n => n.OpType == "QuantizeLinear");
        Assert.True(result.ParityDb >= 30, $"INT8 vs FP32 on output: {result.ParityDb:0.0} dB");
        Assert.NotEmpty(result.Sqnr);
        // The floor check of ptq works on these rows as on the toolkit's own checkpoints.
        QuantAnalysis.RequireSqnrFloor(result.Sqnr, 0, path);
        Assert.ThrowsAny<Exception>(() => QuantAnalysis.RequireSqnrFloor(result.Sqnr, 200, path));

        // Calibration feeds are the dataset's real pairs: target crops in [−1,1], source embeddings of unit length.
        var feed = swapper.Batches(TinyDataset.Path, Splits.Train, 8, 1).First();
        Assert.Equal([8L, 3, 32, 32], feed["target"].shape);
        Assert.True(feed["target"].min().item<float>() >= -1 && feed["target"].max().item<float>() <= 1);
        Assert.Equal(1.0, feed["source"].norm(1).mean().item<float>(), 3);
    }

    [Fact]
    public void PtqCommand_OnAnExportedSwapper_WritesInt8OrRefusesAWrongPreset()
    {
        var path = ExportSwapTeacher("cli.onnx");
        var output = Path.Combine(Path.GetDirectoryName(path)!, "cli-int8.onnx");
        var (wrong, wrongText) = Tests.Cli.CliTests.Ffc("ptq", path, "--io-preset", "arcface", "--dataset", TinyDataset.Path, "-o", output);
        Assert.NotEqual(0, wrong);
        Assert.Contains($"{path}: the arcface preset needs exactly one RGB image input", wrongText);
        Assert.False(File.Exists(output));
        var (code, text) = Tests.Cli.CliTests.Ffc("ptq", path, "--calibration", "8", "--min-sqnr", "0", "--dataset", TinyDataset.Path, "-o", output);
        Assert.True(code == 0, text);
        Assert.Contains("io preset swapper", text);
        Assert.Matches(@"INT8 vs the FP32 original on held-out faces: \d+\.\d dB PSNR on 'output'", text);
        Assert.True(File.Exists(output));
    }

    [Fact]
    public void ArcfacePreset_CalibratesOnTheCropsIdentityNetworkFeedsTheRecogniser()
    {
        var preset = new ArcfaceIoPreset("input", 112, 127.5f, 127.5f, "embedding");
        using var scope = NewDisposeScope();
        var feed = preset.Batches(TinyDataset.Path, Splits.Train, 8, 1).First()["input"];
        Assert.Equal([8L, 3, 112, 112], feed.shape);

        // The same faces as arcface_128 crops, warped to arcface_112_v2 as IdentityNetwork.forward does.
        var crops = ImageIoPreset.Crops(TinyDataset.Path, Splits.Train, ArcfaceIoPreset.SourceCropSize, 8, 1).First();
        var expected = IdentityNetwork.RecogniserCrops(crops, IdentityEmbedder.CropSize).add(1).mul(127.5).sub(127.5).div(127.5);
        Assert.True(feed.sub(expected).abs().max().item<float>() < 1e-5f);

        // And not what the generic image preset gives (arcface_128 resized to 112: the old, wrong calibration).
        var resized = new ImageIoPreset("input", 112, 127.5f, 127.5f, "embedding").Batches(TinyDataset.Path, Splits.Train, 8, 1).First()["input"];
        Assert.True(feed.sub(resized).abs().mean().item<float>() > 0.05f);

        // The five landmarks of each face land on the arcface_112_v2 template in the 112-px frame.
        using var data = new FaceSwapData(TinyDataset.Path, Splits.Train, ArcfaceIoPreset.SourceCropSize);
        var toRecogniser = FaceTemplates.CropToCrop(FaceTemplates.Arcface128, ArcfaceIoPreset.SourceCropSize, FaceTemplates.Arcface112V2, 112);
        var template = FaceTemplates.InPixels(FaceTemplates.Arcface112V2, 112);
        double error = data.Records.Average(r =>
        {
            double s = (double)ArcfaceIoPreset.SourceCropSize / r.CropSize;
            var five = FaceTemplates.FivePointsFrom68(r.LandmarkPoints().Select(p => (p.X * s, p.Y * s)).ToList());
            return five.Zip(template, (p, t) => { var q = toRecogniser.Apply(p.X, p.Y); return Math.Sqrt((q.X - t.X) * (q.X - t.X) + (q.Y - t.Y) * (q.Y - t.Y)); }).Average();
        });
        Assert.True(error < 4, $"mean landmark distance to arcface_112_v2: {error:0.00} px");
    }

    [Fact]
    public void Presets_ResolveFromMetadataInputsAndTheOption()
    {
        var swapper = OnnxImporter.Import(ExportSwapTeacher("resolve.onnx")).Graph;
        Assert.IsType<SwapperIoPreset>(ModelIoPreset.Resolve("s.onnx", swapper, null, null, null));
        var e = Assert.Throws<InvalidDataException>(() => ModelIoPreset.Resolve("s.onnx", swapper, null, 127.5f, null));
        Assert.StartsWith("s.onnx: ", e.Message);
        Assert.Throws<InvalidDataException>(() => ModelIoPreset.Resolve("s.onnx", swapper, "arcface", null, null));

        NetworkGraph Single(int size, Dictionary<string, string>? meta = null) => new()
        {
            Name = "r", Resolution = size, Inputs = [new GraphInput("input", 3, true)],
            Nodes = [new GraphNode { Name = "c", Op = Ops.Conv, Inputs = ["input"], Channels = 4 }], Outputs = [new GraphOutput("out", "c")],
            Metadata = meta ?? new Dictionary<string, string>(),
        };
        Assert.IsType<ArcfaceIoPreset>(ModelIoPreset.Resolve("r.onnx", Single(112), null, null, null));
        Assert.IsType<ImageIoPreset>(ModelIoPreset.Resolve("r.onnx", Single(96), null, null, null));
        Assert.IsType<ArcfaceIoPreset>(ModelIoPreset.Resolve("r.onnx", Single(96, new() { ["io_preset"] = "arcface" }), null, null, null));
        Assert.IsType<ImageIoPreset>(ModelIoPreset.Resolve("r.onnx", Single(112), "image", null, null));
        Assert.Contains("(x - 127)/128", ModelIoPreset.Resolve("r.onnx", Single(112), null, 127f, 128f).Description);
    }
}
