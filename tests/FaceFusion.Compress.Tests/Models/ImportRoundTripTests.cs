using FaceFusion.Compress.Export;
using FaceFusion.Compress.Models.Architectures;
using FaceFusion.Compress.Models.Graph;
using FaceFusion.Compress.Models.Import;
using FaceFusion.Compress.Tests.Export;
using Google.Protobuf;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Tests.Models;

/// <summary>The toolkit's own ONNX exports import back into the graph ops they came from and give the file's outputs.</summary>
public class ImportRoundTripTests
{
    [Theory]
    [InlineData("teacher", false)]
    [InlineData("teacher", true)]
    [InlineData("swap-teacher", false)]
    [InlineData("swap-teacher", true)]
    public void Import_OfOwnExport_MatchesTheFileInOnnxRuntime(string architecture, bool mergeHeads)
    {
        using var model = ExportParityTests.Prepared(SwapperArchitectures.Build(architecture, 32));
        var proto = OnnxExporter.Export(model, new ExportOptions { MergeSiblingConvs = mergeHeads });
        Assert.Equal(mergeHeads, proto.Graph.Node.Any(n => n.OpType == "Split"));
        var path = Path.Combine(TestAssets.TempDir(), $"{architecture}.onnx");
        File.WriteAllBytes(path, proto.ToByteArray());

        var imported = OnnxImporter.Import(path);
        using var module = imported.BuildModule();
        foreach (var w in imported.Weights.Values) w.Dispose();
        module.eval();

        // The exporter's subgraphs come back as the graph ops, not as loose pieces.
        int Count(NetworkGraph g, string op) => g.Nodes.Count(n => n.Op == op);
        foreach (var op in new[] { Ops.IdentityInjection, Ops.AttentionFusion, Ops.Resize, Ops.Concat })
            Assert.Equal(Count(model.Graph, op), Count(imported.Graph, op));
        Assert.Equal(Count(model.Graph, Ops.Conv), Count(imported.Graph, Ops.Conv));
        Assert.Equal(["target", "source"], imported.Graph.Inputs.Select(i => i.Name));
        Assert.Equal("arcface_128", imported.Graph.Metadata["template"]);

        using var scope = NewDisposeScope();
        var inputs = GraphTests.SwapperInputs(2, 32, seed: 21);
        var file = ExportParityTests.RunOrt(proto.ToByteArray(), inputs);
        Dictionary<string, Tensor> ours;
        using (no_grad()) ours = module.call(inputs);
        foreach (var (output, range) in new[] { ("output", 2.0), ("mask", 1.0) })
        {
            double psnr = ExportParityTests.Psnr(file[output], ours[output].contiguous().data<float>().ToArray(), range);
            Assert.True(psnr >= 60, $"{architecture} merge={mergeHeads} {output}: {psnr:0.0} dB");
        }
    }

    [Fact]
    public void Import_RefusesAnAffineInstanceNormNamingTheNode()
    {
        using var model = ExportParityTests.Prepared(SwapperArchitectures.SwapTeacher(32));
        var proto = OnnxExporter.Export(model);
        // Break one injection: a scale other than 1 is neither the exporter's pattern nor the plain graph op.
        var norm = proto.Graph.Node.First(n => n.OpType == "InstanceNormalization");
        var scale = proto.Graph.Initializer.First(t => t.Name == norm.Input[1]);
        var values = new float[scale.Dims[0]];
        Array.Fill(values, 2f);
        var bytes = new byte[values.Length * 4];
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
        scale.RawData = ByteString.CopyFrom(bytes);
        var path = Path.Combine(TestAssets.TempDir(), "broken.onnx");
        File.WriteAllBytes(path, proto.ToByteArray());
        var e = Assert.Throws<InvalidDataException>(() => OnnxImporter.Import(path));
        Assert.StartsWith($"{path}: node '{norm.Name}' (InstanceNormalization): ", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }
}
