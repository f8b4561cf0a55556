using System.Buffers.Binary;
using System.Text;
using FaceFusion.Compress.Models.Architectures;
using FaceFusion.Compress.Models.Checkpoints;
using FaceFusion.Compress.Recipes;
using FaceFusion.Compress.Tests.Export;
using static TorchSharp.torch;
using FaceFusion.Compress.Tests.Cli;

namespace FaceFusion.Compress.Tests.Reliability;

/// <summary>Values no run can use are refused at the boundary, each error naming the value.</summary>
public class InputValidationTests
{
    [Fact]
    public void RecipeCounts_ThatAreNegativeOrZero_AreErrorsNamingTheValue()
    {
        var path = Path.Combine(TestAssets.TempDir(), "counts.yaml");
        File.WriteAllText(path, """
            name: counts
            teacher: somewhere
            stages:
              - stage: prune
                target_macs: 0.5
                finetune_steps: -30
              - stage: ptq
                calibration: -1
              - stage: bench
                pairs: 0
              - stage: finetune
                lr: NaN
            """);
        var e = Assert.Throws<RecipeException>(() => RecipeParser.Load(path));
        Assert.Equal(4, e.Errors.Count);
        Assert.Contains(e.Errors, x => x.Line == 6 && x.Message.Contains("'finetune_steps' -30 is impossible"));
        Assert.Contains(e.Errors, x => x.Line == 8 && x.Message.Contains("'calibration' -1 is impossible"));
        Assert.Contains(e.Errors, x => x.Line == 10 && x.Message.Contains("'pairs' 0 is impossible"));
        Assert.Contains(e.Errors, x => x.Line == 12 && x.Message.Contains("'lr' must be a finite number, got 'NaN'"));
    }

    /// <summary>A safetensors file of the given header JSON and data bytes.</summary>
    private static string RawSafetensors(string dir, string header, int dataBytes)
    {
        var path = Path.Combine(dir, $"{Guid.NewGuid():N}.safetensors");
        var json = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)json.Length);
        json.CopyTo(bytes, 8);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Fact]
    public void Safetensors_WithOffsetsIntoTheHeaderOrOverlapping_AreRefusedNamingTheFileAndTensor()
    {
        var dir = TestAssets.TempDir();
        var intoHeader = RawSafetensors(dir, """{"w":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}""", 8);
        var e = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(intoHeader, out _));
        Assert.StartsWith(intoHeader, e.Message);
        Assert.Contains("'w'", e.Message);
        var overlapping = RawSafetensors(dir, """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", 8);
        e = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(overlapping, out _));
        Assert.Contains("overlap", e.Message);
        var missingKey = RawSafetensors(dir, """{"a":{"dtype":"F32"}}""", 0);
        e = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(missingKey, out _));
        Assert.StartsWith(missingKey, e.Message);
    }

    [Fact]
    public void Checkpoint_WithAnIntegerDtypeOnAFloatWeight_IsRefusedByExport()
    {
        var checkpoint = Path.Combine(TestAssets.TempDir(), "model");
        using (var model = ExportParityTests.Prepared(SwapperArchitectures.Student(32))) Checkpoint.Save(checkpoint, model);
        var weights = Path.Combine(checkpoint, Checkpoint.WeightsFile);
        var tensors = SafeTensors.Load(weights, out var metadata);
        var name = tensors.First(t => t.Value.dtype == ScalarType.Float32).Key;
        var original = tensors[name];
        tensors[name] = original.to_type(ScalarType.Int32);
        original.Dispose();
        SafeTensors.Save(weights, tensors, metadata);
        foreach (var t in tensors.Values) t.Dispose();
        var output = Path.Combine(Path.GetDirectoryName(checkpoint)!, "m.onnx");
        var (code, text) = CliTests.Ffc("export", checkpoint, "-o", output);
        Assert.Equal(1, code);
        var errors = text.Split('\n').Where(l => l.StartsWith("error:")).ToList();
        Assert.Single(errors);
        Assert.Contains(weights, errors[0]);
        Assert.Contains($"'{name}' is stored as Int32", errors[0]);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void NaNOrInfinity_ForAnyFloatingPointOption_IsOneErrorLine()
    {
        var (code, text) = CliTests.Ffc("recommend", TestAssets.TempDir(), "--latency-ms", "NaN");
        Assert.Equal(1, code);
        Assert.Equal("error: --latency-ms NaN: a finite number is needed", text.Trim());
        (code, text) = CliTests.Ffc("recommend", TestAssets.TempDir(), "--size-mb", "Infinity");
        Assert.Equal(1, code);
        Assert.Contains("error: --size-mb Infinity: a finite number is needed", text);
    }
}

/// <summary>Issue 26, item 8: every failure is one `error:` line, LibTorch's included.</summary>
public class ErrorLineTests
{
    [Fact]
    public void LibTorchFailures_BecomeOneLine_WithoutTheNativeTrace()
    {
        // The form TorchSharp passes LibTorch's c10::Error on in (some ops terminate the process instead, so the test
        // cannot provoke one safely).
        var caught = new System.Runtime.InteropServices.ExternalException(
            "Given groups=1, weight of size [8, 3, 3, 3], expected input[1, 4, 32, 32] to have 3 channels, but got 4 channels instead\n"
            + "Exception raised from check_shape_forward at /pytorch/aten/src/ATen/native/Convolution.cpp:1067 (most recent call first):\n"
            + "frame #0: c10::Error::Error(c10::SourceLocation, std::string) + 0x9c (0x7f in libc10.so)\n"
            + "frame #1: at::native::_convolution(...) + 0x1f0 (0x7f in libtorch_cpu.so)\n");
        var line = FaceFusion.Compress.Cli.ErrorLine.Of(caught);
        Assert.StartsWith("error: Given groups=1, weight of size [8, 3, 3, 3]", line);
        Assert.StartsWith("error: ", line);
        Assert.DoesNotContain('\n', line);
        Assert.DoesNotContain("frame #", line);
        Assert.Contains("FFC_DEBUG=1", line);

        // The toolkit's own messages of several lines stay whole on one line; wrappers give their inner cause.
        Assert.Equal("error: a.yaml:2: bad; a.yaml:5: worse", FaceFusion.Compress.Cli.ErrorLine.Of(new InvalidDataException("a.yaml:2: bad\na.yaml:5: worse\n")));
        Assert.Equal("error: m.onnx: broken", FaceFusion.Compress.Cli.ErrorLine.Of(new AggregateException(new InvalidDataException("m.onnx: broken"))));
    }
}

/// <summary>Issue 26, item 9: `ffc info -r 1000000` printed a negative MAC count (a 64-bit overflow).</summary>
public class ResolutionBoundTests
{
    [Fact]
    public void Info_AtAHugeResolution_IsRefused_AndAtTheLargestAllowedCountsPositiveMacs()
    {
        var (code, text) = Tests.Cli.CliTests.Ffc("info", "teacher", "-r", "1000000");
        Assert.NotEqual(0, code);
        Assert.Contains("1000000", text);
        Assert.DoesNotContain("-", System.Text.RegularExpressions.Regex.Match(text, @"total[^\n]*").Value);
        var summary = FaceFusion.Compress.Models.Graph.ModelSummary.Of(
            FaceFusion.Compress.Models.Architectures.SwapperArchitectures.Build("teacher", FaceFusion.Compress.Models.Architectures.SwapperIO.MaxResolution),
            FaceFusion.Compress.Models.Architectures.SwapperIO.MaxResolution);
        Assert.True(summary.Macs > 0, summary.Macs.ToString());
        Assert.Throws<ArgumentException>(() => FaceFusion.Compress.Models.Architectures.SwapperArchitectures.Build("teacher", 4096));
    }
}
