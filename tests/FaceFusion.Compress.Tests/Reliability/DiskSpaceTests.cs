using FaceFusion.Compress.Assets;
using FaceFusion.Compress.Models.Architectures;
using FaceFusion.Compress.Models.Checkpoints;
using FaceFusion.Compress.Tests.Cli;
using FaceFusion.Compress.Tests.Export;

namespace FaceFusion.Compress.Tests.Reliability;

public class DiskSpaceTests
{
    [Fact]
    public void WritesThatDoNotFit_FailBeforeWriting_NamingTheFolderAndTheSpace()
    {
        var root = TestAssets.TempDir();
        var checkpoint = Path.Combine(root, "model");
        using (var model = ExportParityTests.Prepared(SwapperArchitectures.Student(32))) Checkpoint.Save(checkpoint, model);
        // A reserve larger than any disk: every large write must be refused up front.
        var huge = new Dictionary<string, string> { ["FFC_DISK_RESERVE_MB"] = "1000000000000" };
        var onnx = Path.Combine(root, "out", "model.onnx");
        var (code, text) = CliTests.FfcWith(huge, "export", checkpoint, "-o", onnx);
        Assert.Equal(1, code);
        Assert.Contains("not enough disk space for the ONNX model", text);
        Assert.Contains(onnx, text);
        Assert.False(File.Exists(onnx));
        Assert.False(File.Exists(onnx + ".partial"));

        var config = Path.Combine(root, "train.yaml");
        File.WriteAllText(config, $"model: student\nresolution: 32\ndata: {TinyDataset.Path}\noutput: {Path.Combine(root, "train")}\nbatch_size: 2\nphases:\n  - resolution: 32\n    steps: 2\ncheckpoint_every: 1\neval_pairs: 2\neval_split: train\n");
        (code, text) = CliTests.FfcWith(huge, "train", "--config", config);
        Assert.Equal(1, code);
        Assert.Contains("not enough disk space for the weights", text);
        Assert.False(File.Exists(Path.Combine(root, "train", "checkpoints", "latest")));

        // With the normal reserve the same export works.
        (code, text) = CliTests.Ffc("export", checkpoint, "-o", onnx);
        Assert.True(code == 0, text);
        Assert.True(DiskSpace.ReserveBytes > 0);
    }
}
