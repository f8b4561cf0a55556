using FaceFusion.Compress.Data;
using FaceFusion.Compress.Export;
using FaceFusion.Compress.Models.Architectures;
using FaceFusion.Compress.Models.Graph;
using FaceFusion.Compress.Models.Networks;
using FaceFusion.Compress.Runtime;
using FaceFusion.Compress.Tests.Models;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using TorchSharp;
using static TorchSharp.torch;
using DenseTensor = Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<float>;

namespace FaceFusion.Compress.Tests.Export;

public class ExportParityTests
{
    /// <summary>
    /// A model with non-trivial BN statistics and attention switched on, in eval mode. <paramref name="inputs"/> makes
    /// a batch of 4 for the statistics (default: swapper inputs).
    /// </summary>
    internal static GraphModule Prepared(NetworkGraph graph, int seed = 4, Func<Dictionary<string, Tensor>>? inputs = null)
    {
        torch.manual_seed(seed);
        var model = new GraphModule(graph);
        using (no_grad())
        {
            model.train();
            var batch = inputs?.Invoke() ?? GraphTests.SwapperInputs(4, graph.Resolution, seed);
            for (int i = 0; i < 3; i++) foreach (var t in model.call(batch).Values) t.Dispose();
            foreach (var (name, p) in model.named_parameters())
                if (name.EndsWith(".gamma")) p.fill_(0.7f);
        }
        model.eval();
        return model;
    }

    internal static Dictionary<string, float[]> RunOrt(byte[] onnx, IReadOnlyDictionary<string, Tensor> inputs)
    {
        OrtSessions.EnsureEnvironment();
        using var session = new InferenceSession(onnx, OrtSessions.CreateOptions());
        var feeds = inputs.Select(kv => NamedOnnxValue.CreateFromTensor(kv.Key,
            new DenseTensor(kv.Value.contiguous().data<float>().ToArray(), kv.Value.shape.Select(d => (int)d).ToArray()))).ToList();
        using var results = session.Run(feeds);
        return results.ToDictionary(r => r.Name, r => r.AsTensor<float>().ToArray());
    }

    internal static double Psnr(float[] reference, float[] actual, double range = 2.0)
    {
        double mse = reference.Zip(actual, (a, b) => (double)(a - b) * (a - b)).Average();
        return mse == 0 ? 200 : 10 * Math.Log10(range * range / mse);
    }

    [Theory]
    [InlineData("teacher", 32)]
    [InlineData("student", 32)]
    [InlineData("student", 64)]
    public void Fp32Export_MatchesTorchSharp_AtBatchOneAndThree(string name, int resolution)
    {
        using var model = Prepared(SwapperArchitectures.Build(name, resolution));
        var proto = OnnxExporter.Export(model);
        Assert.DoesNotContain(proto.Graph.Node, n => n.OpType == "BatchNormalization");
        Assert.Contains(proto.Graph.Node, n => n.OpType == "Softmax");
        Assert.Contains(proto.Graph.Node, n => n.OpType == "InstanceNormalization");
        Assert.Contains(proto.Graph.Node, n => n.OpType == "Resize");
        Assert.Equal(["target", "source"], proto.Graph.Input.Select(i => i.Name));
        Assert.Equal(["output", "mask"], proto.Graph.Output.Select(o => o.Name));
        Assert.Equal("N", proto.Graph.Input[0].Type.TensorType.Shape.Dim[0].DimParam);
        Assert.True(proto.OpsetImport[0].Version >= 17);
        Assert.Contains(proto.MetadataProps, p => p.Key == "architecture_hash" && p.Value == model.Graph.ArchitectureHash());
        var bytes = proto.ToByteArray();
        foreach (var batch in new[] { 1, 3 })
        {
            using var scope = NewDisposeScope();
            var inputs = GraphTests.SwapperInputs(batch, resolution, seed: 9 + batch);
            Dictionary<string, Tensor> expected;
            using (no_grad()) expected = model.call(inputs);
            var actual = RunOrt(bytes, inputs);
            foreach (var output in new[] { "output", "mask" })
            {
                double psnr = Psnr(expected[output].data<float>().ToArray(), actual[output], output == "mask" ? 1.0 : 2.0);
                Assert.True(psnr >= 60, $"{name}@{resolution} batch {batch} {output}: {psnr:0.0} dB");
            }
        }
    }

    [Fact]
    public void Fp16Export_KeepsFloatIoAndStaysAbove40dB()
    {
        using var model = Prepared(SwapperArchitectures.Student(32));
        var proto = OnnxExporter.Export(model, new ExportOptions { Precision = ExportPrecision.Fp16 });
        Assert.Equal((int)Onnx.TensorProto.Types.DataType.Float, proto.Graph.Input[0].Type.TensorType.ElemType);
        Assert.Contains(proto.Graph.Initializer, t => t.DataType == (int)Onnx.TensorProto.Types.DataType.Float16);
        using var scope = NewDisposeScope();
        var inputs = GraphTests.SwapperInputs(2, 32);
        Dictionary<string, Tensor> expected;
        using (no_grad()) expected = model.call(inputs);
        var actual = RunOrt(proto.ToByteArray(), inputs);
        double psnr = Psnr(expected["output"].data<float>().ToArray(), actual["output"]);
        Assert.True(psnr >= 40, $"fp16 {psnr:0.0} dB");
    }

    [Fact]
    public void IdentityNetworkExport_MatchesTheOriginalOnnx()
    {
        using var identity = new IdentityNetwork(TestAssets.Assets.IdentityEmbedder);
        var embedder = (GraphModule)identity.named_children().Single().module;
        var proto = OnnxExporter.Export(embedder);
        using var original = OrtSessions.Open(TestAssets.Assets.IdentityEmbedder);
        using var scope = NewDisposeScope();
        var gen = new Generator(5);
        for (int i = 0; i < 3; i++)
        {
            var x = rand(1, 3, 112, 112, generator: gen).mul(2).sub(1);
            var ours = RunOrt(proto.ToByteArray(), new Dictionary<string, Tensor> { [identity.InputName] = x }).Values.Single();
            using var res = original.Run([NamedOnnxValue.CreateFromTensor(identity.InputName, new DenseTensor(x.data<float>().ToArray(), [1, 3, 112, 112]))]);
            var reference = res.First().AsTensor<float>().ToArray();
            Assert.True(IdentityEmbedder.Cosine(reference, ours) >= 0.9999f);
        }
    }

    [Fact]
    public void SiblingConvs_AreMergedIntoOneConvAndSplit_WithTheSameOutputs()
    {
        // The swappers' image and mask heads read the same value: merged they are one Conv and a Split.
        using var model = Prepared(SwapperArchitectures.Teacher(32));
        var merged = OnnxExporter.Export(model, new ExportOptions { MergeSiblingConvs = true });
        var separate = OnnxExporter.Export(model, new ExportOptions { MergeSiblingConvs = false });
        // A float file is what other tools quantize: separate heads unless asked (one per-tensor scale for both would be
        // set by the mask logits' range); the metadata says which form the file has.
        var byDefault = OnnxExporter.Export(model);
        Assert.DoesNotContain(byDefault.Graph.Node, n => n.OpType == "Split");
        Assert.DoesNotContain(OnnxExporter.Export(model, new ExportOptions { Precision = ExportPrecision.Fp16 }).Graph.Node, n => n.OpType == "Split");
        Assert.Equal("separate", byDefault.MetadataProps.Single(p => p.Key == "sibling_convs").Value);
        Assert.Equal("merged", merged.MetadataProps.Single(p => p.Key == "sibling_convs").Value);
        Assert.Single(merged.Graph.Node, n => n.OpType == "Split");
        Assert.DoesNotContain(separate.Graph.Node, n => n.OpType == "Split");
        Assert.Equal(separate.Graph.Node.Count(n => n.OpType == "Conv") - 1, merged.Graph.Node.Count(n => n.OpType == "Conv"));
        using var scope = NewDisposeScope();
        var inputs = GraphTests.SwapperInputs(2, 32, seed: 3);
        var a = RunOrt(merged.ToByteArray(), inputs);
        var b = RunOrt(separate.ToByteArray(), inputs);
        foreach (var output in new[] { "output", "mask" })
            Assert.True(Psnr(b[output], a[output], 1.0) >= 100, $"{output}: {Psnr(b[output], a[output], 1.0):0.0} dB");

        // Siblings with their own BatchNorms (each folded before the weights are joined), one of them reused later.
        var g = new GraphBuilder("siblings", 16);
        var x = g.ImageInput("target", 3);
        var left = g.BatchNorm("left_bn", g.Conv("left_conv", x, 5));
        var right = g.BatchNorm("right_bn", g.Conv("right_conv", x, 7));
        var pointwise = g.Conv("pointwise", x, 4, kernel: 1);
        g.Output("output", g.Concat("joined", left, right, g.Sum("sum", left, g.Conv("back", right, 5))));
        g.Output("pointwise", pointwise);
        using var custom = Prepared(g.Build(), 6, () => new Dictionary<string, Tensor> { ["target"] = randn(4, 3, 16, 16).mul(2).add(0.5) });
        var image = new Dictionary<string, Tensor> { ["target"] = randn(2, 3, 16, 16, generator: new Generator(2)) };
        var proto = OnnxExporter.Export(custom, new ExportOptions { MergeSiblingConvs = true });
        Assert.Single(proto.Graph.Node, n => n.OpType == "Split"); // the 1×1 conv has another geometry: not merged
        Dictionary<string, Tensor> expected;
        using (no_grad()) expected = custom.call(image);
        var actual = RunOrt(proto.ToByteArray(), image);
        foreach (var output in new[] { "output", "pointwise" })
        {
            double psnr = Psnr(expected[output].data<float>().ToArray(), actual[output], 10.0);
            Assert.True(psnr >= 80, $"{output}: {psnr:0.0} dB");
        }
    }

    [Fact]
    public void UnsupportedNode_GivesTheDocumentedErrorNamingIt()
    {
        using var model = new GraphModule(SwapperArchitectures.Student(32, new StudentOptions { Activation = Activations.HardSwish }));
        var e = Assert.Throws<ExportException>(() => OnnxExporter.Export(model, new ExportOptions { Opset = 13 }));
        Assert.Contains("stem_act", e.Message);
        Assert.Contains("opset", e.Message);
        var e2 = Assert.Throws<ExportException>(() => OnnxExporter.Export(model, new ExportOptions { Opset = 9 }));
        Assert.Contains("opset 9", e2.Message);
        // With opset 17 the same model exports and runs.
        Assert.Contains(OnnxExporter.Export(model).Graph.Node, n => n.OpType == "HardSwish");
    }
}
