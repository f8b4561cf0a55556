using FaceFusion.Compress.Export;
using FaceFusion.Compress.Models.Architectures;
using FaceFusion.Compress.Models.Graph;
using FaceFusion.Compress.Quantization;
using FaceFusion.Compress.Tests.Export;
using FaceFusion.Compress.Tests.Models;
using Google.Protobuf;
using TorchSharp;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Tests.Quantization;

public class QuantizationTests
{
    [Fact]
    public void FakeQuant_EqualsQuantizeThenDequantizeByTheFormula()
    {
        var p = QuantParams.Uint8(-1.0, 3.0);
        Assert.Equal(4.0 / 255, p.Scale, 6);
        Assert.Equal(64, p.ZeroPoint); // round(1 / (4/255)) = 63.75 → 64
        using var scope = NewDisposeScope();
        var x = tensor(new[] { -2f, -1f, -0.3f, 0f, 0.01f, 1.234f, 2.999f, 5f });
        var fq = FakeQuant.PerTensor(x, p).data<float>().ToArray();
        var expected = x.data<float>().ToArray().Select(v => p.Dequantize(p.Quantize(v))).ToArray();
        Assert.Equal(expected, fq, (a, b) => Math.Abs(a - b) < 1e-6);
        Assert.Equal(0f, fq[3]); // zero is exact
    }

    [Fact]
    public void StraightThroughEstimator_PassesGradientsInsideTheRangeOnly()
    {
        var p = QuantParams.Uint8(0, 1);
        using var scope = NewDisposeScope();
        var x = tensor(new[] { -0.5f, 0.2f, 0.7f, 1.5f }, requires_grad: true);
        FakeQuant.PerTensor(x, p).sum().backward();
        Assert.Equal([0f, 1f, 1f, 0f], x.grad!.data<float>().ToArray());
    }

    [Fact]
    public void ZeroRangeAndNonFiniteRanges_NeverGiveNaN()
    {
        foreach (var p in new[] { QuantParams.Uint8(0, 0), QuantParams.Uint8(double.NaN, double.PositiveInfinity), QuantParams.Int8Symmetric(0) })
        {
            Assert.True(p.Scale > 0 && float.IsFinite(p.Scale));
            using var scope = NewDisposeScope();
            var y = FakeQuant.PerTensor(zeros(4), p);
            Assert.False(y.isnan().any().item<bool>());
        }
        using var s2 = NewDisposeScope();
        var (w, scales) = FakeQuant.PerChannelSymmetric(zeros(3, 2, 1, 1));
        Assert.All(scales, v => Assert.True(v > 0));
        Assert.False(w.isnan().any().item<bool>());
    }

    [Fact]
    public void QdqExport_RunsIntegerKernelsInOrtAndKeepsPolicyNodesFloat()
    {
        using var model = ExportParityTests.Prepared(SwapperArchitectures.Student(32));
        var proto = PostTrainingQuantizer.Quantize(model, TinyDataset.Path, 8, CalibrationMethod.MinMax);
        // Attention fusion and identity injection compute in float: no QuantizeLinear follows their projections (so ONNX
        // Runtime cannot turn them into integer kernels); only their weights are stored INT8 (weight-only, per channel).
        var dequantized = proto.Graph.Node.Where(n => n.OpType == "DequantizeLinear").Select(n => n.Output[0]).ToHashSet();
        var quantizedInputs = proto.Graph.Node.Where(n => n.OpType == "QuantizeLinear").Select(n => n.Input[0]).ToHashSet();
        var attentionConvs = proto.Graph.Node.Where(n => n.OpType == "Conv" && n.Name.Contains("_attn_")).ToList();
        Assert.NotEmpty(attentionConvs);
        Assert.All(attentionConvs, n => Assert.DoesNotContain(n.Output[0], quantizedInputs));
        Assert.All(attentionConvs, n => Assert.Contains(n.Input[1], dequantized));
        Assert.Contains(proto.Graph.Node, n => n.OpType == "InstanceNormalization");
        Assert.Contains(proto.Graph.Initializer, t => t.DataType == (int)Onnx.TensorProto.Types.DataType.Int8);

        var bytes = proto.ToByteArray();
        var kernels = PostTrainingQuantizer.InspectKernels(bytes);
        Assert.True(kernels.OpCounts.GetValueOrDefault("QLinearConv") >= 20, string.Join(", ", kernels.OpCounts.Select(kv => $"{kv.Key}×{kv.Value}")));

        using var scope = NewDisposeScope();
        var inputs = GraphTests.SwapperInputs(2, 32, seed: 3);
        Dictionary<string, Tensor> expected;
        using (no_grad()) expected = model.call(inputs);
        var actual = ExportParityTests.RunOrt(bytes, inputs);
        double psnr = ExportParityTests.Psnr(expected["output"].data<float>().ToArray(), actual["output"]);
        Assert.True(psnr >= 25, $"INT8 vs float {psnr:0.0} dB");
    }

    [Fact]
    public void KeepFloat_KeepsNamedConvsOutOfInt8()
    {
        using var model = ExportParityTests.Prepared(SwapperArchitectures.Student(32));
        var policy = new QuantPolicy { KeepFloat = new HashSet<string> { "stem_conv" } };
        var proto = PostTrainingQuantizer.Quantize(model, TinyDataset.Path, 4, CalibrationMethod.Percentile, policy);
        Assert.DoesNotContain(proto.Graph.Initializer, t => t.Name == "stem_conv.weight_q");
        Assert.Contains(proto.Graph.Initializer, t => t.Name == "stem_conv.weight");
        Assert.Contains(proto.Graph.Initializer, t => t.Name == "enc1a_expand_conv.weight_q");
        var e = Assert.Throws<ExportException>(() => OnnxExporter.Export(model, new ExportOptions { Precision = ExportPrecision.Int8 }));
        Assert.Contains("calibrated", e.Message);
    }
}
