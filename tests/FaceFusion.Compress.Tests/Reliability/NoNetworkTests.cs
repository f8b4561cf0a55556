using FaceFusion.Compress.Export;
using FaceFusion.Compress.Models.Architectures;
using FaceFusion.Compress.Tests.Export;

namespace FaceFusion.Compress.Tests.Reliability;

/// <summary>
/// Only `make setup` touches the network: representative commands run inside a network namespace with no network
/// at all (`unshare -n`: not even loopback is up), and succeed.
/// </summary>
public class NoNetworkTests
{
    private static (int Code, string Output) FfcOffline(params string[] args) =>
        Tests.Cli.CliTests.Run("unshare", ["-n", "dotnet", Path.Combine(AppContext.BaseDirectory, "ffc.dll"), .. args]);

    [Fact]
    public void RepresentativeCommands_RunWithoutAnyNetwork()
    {
        var (probe, probeText) = FfcOffline("--version");
        Assert.True(probe == 0, $"cannot run in a network namespace (unshare -n needs root or user namespaces): {probeText}");
        var root = TestAssets.TempDir();

        // Data preparation on a few cached stills (two identities).
        var input = Path.Combine(root, "input");
        foreach (var (identity, files) in new[] { ("franck", new[] { "franck_01829.jpg", "franck_02045.jpg", "franck_02159.jpg" }), ("audrey", new[] { "audrey.jpg", "audrey_crop.jpg" }) })
        {
            Directory.CreateDirectory(Path.Combine(input, identity));
            foreach (var f in files) File.Copy(TestAssets.Still(f), Path.Combine(input, identity, f));
        }
        var (code, text) = FfcOffline("data", "prepare", "--input", input, "-o", Path.Combine(root, "data"), "--sizes", "64");
        Assert.True(code == 0, text);
        Assert.True(File.Exists(Path.Combine(root, "data", "manifest.csv")));

        // A few training steps, an export and a bench of a tiny model.
        var config = Path.Combine(root, "train.yaml");
        File.WriteAllText(config, $"model: student\nresolution: 32\ndata: {TinyDataset.Path}\noutput: {Path.Combine(root, "train")}\nbatch_size: 2\nphases:\n  - resolution: 32\n    steps: 2\ncheckpoint_every: 2\nsample_every: 2\neval_pairs: 2\neval_split: train\n");
        (code, text) = FfcOffline("train", "--config", config);
        Assert.True(code == 0, text);
        var onnx = Path.Combine(root, "student.onnx");
        (code, text) = FfcOffline("export", Path.Combine(root, "train", "model"), "-o", onnx);
        Assert.True(code == 0, text);
        (code, text) = FfcOffline("bench", onnx, "--dataset", TinyDataset.Path, "--data", "train", "--pairs", "2", "--runs", "50", "-o", Path.Combine(root, "bench"));
        Assert.True(code == 0, text);
        Assert.True(File.Exists(Path.Combine(root, "bench", "bench.csv")));
    }
}
