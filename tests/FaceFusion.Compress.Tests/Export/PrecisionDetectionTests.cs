using FaceFusion.Compress.Export;
using FaceFusion.Compress.Models.Architectures;
using FaceFusion.Compress.Quantization;
using Onnx;

namespace FaceFusion.Compress.Tests.Export;

/// <summary>Precision comes from the graph, so an INT8 file made by another quantizer (which copies the FP32 file's
/// metadata) is still benched and checked as INT8.</summary>
public class PrecisionDetectionTests
{
    [Fact]
    public void Precision_IsReadFromTheGraph_NotFromMetadataThatOtherQuantizersCopy()
    {
        using var model = ExportParityTests.Prepared(SwapperArchitectures.Student(32));
        var fp32 = OnnxExporter.Export(model);
        var fp16 = OnnxExporter.Export(model, new ExportOptions { Precision = ExportPrecision.Fp16 });
        Assert.Equal("fp32", OnnxPrecision.Detect(fp32).Precision);
        Assert.Equal("fp16", OnnxPrecision.Detect(fp16).Precision);
        Assert.False(OnnxPrecision.Detect(fp16).MetadataDisagrees);

        var prepared = PostTrainingQuantizer.Prepare(model, PostTrainingQuantizer.Config(4, CalibrationMethod.MinMax), TinyDataset.Path, 1);
        using var folded = prepared.Model;
        using var simulator = prepared.Simulator;
        var int8 = PostTrainingQuantizer.Export(prepared, 4, CalibrationMethod.MinMax);
        var detected = OnnxPrecision.Detect(int8);
        Assert.Equal("int8", detected.Precision);
        Assert.Contains("QuantizeLinear", detected.Evidence);

        // What a third-party quantizer writes: QDQ nodes, and the FP32 file's metadata copied unchanged.
        var foreign = int8.Clone();
        foreign.MetadataProps.Clear();
        foreign.MetadataProps.AddRange(fp32.MetadataProps.Select(p => p.Clone()));
        var seen = OnnxPrecision.Detect(foreign);
        Assert.Equal("int8", seen.Precision);
        Assert.Equal("fp32", seen.MetadataPrecision);
        Assert.True(seen.MetadataDisagrees);

        // Weight-only 8-bit storage (DequantizeLinear on int8 initializers, float compute) is 8-bit too; a file with
        // no metadata at all is still read.
        var weightsOnly = fp32.Clone();
        weightsOnly.MetadataProps.Clear();
        weightsOnly.Graph.Initializer.Add(new TensorProto { Name = "w_q", DataType = (int)TensorProto.Types.DataType.Int8, Dims = { 1 }, RawData = Google.Protobuf.ByteString.CopyFrom(1) });
        var w = OnnxPrecision.Detect(weightsOnly);
        Assert.Equal("int8", w.Precision);
        Assert.Null(w.MetadataPrecision);

        var path = Path.Combine(TestAssets.TempDir(), "not-onnx.onnx");
        File.WriteAllText(path, "hello, not a model");
        var error = Assert.Throws<InvalidDataException>(() => OnnxPrecision.Detect(path));
        Assert.StartsWith(path, error.Message);
    }
}
