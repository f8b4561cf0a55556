using FaceFusion.Compress.Assets;
using System.ComponentModel;
using FaceFusion.Compress.Export;
using FaceFusion.Compress.Models.Checkpoints;
using FaceFusion.Compress.Quantization;
using FaceFusion.Compress.Training;
using Google.Protobuf;
using Spectre.Console;
using Spectre.Console.Cli;
using FaceFusion.Compress.Reporting;

namespace FaceFusion.Compress.Cli.Commands;

internal sealed class PtqCommand : Command<PtqCommand.Settings>
{
    public sealed class Settings : QuantizationSettings
    {
        [CommandArgument(0, "<MODEL>")]
        [Description("A trained checkpoint folder, or an FP32 ONNX model the importer reads: the toolkit's own exports (swappers with target + source) or your own CNN with one square RGB input [[N,3,S,S]].")]
        public string Model { get; init; } = "";

        [CommandOption("--calibration <N>")]
        [Description("Train images used to calibrate activation ranges. Default 128.")]
        public int Calibration { get; init; } = 128;

        [CommandOption("--method <M>")]
        [Description("minmax (default), percentile (99.99 %) or entropy (KL divergence of the 8-bit histogram).")]
        public string Method { get; init; } = "minmax";

        [CommandOption("--io-preset <P>")]
        [Description("For an ONNX model: its IO convention for calibration and evaluation. swapper (target arcface_128 crops in [[-1,1]] + 512-d source, real pairs), arcface (112-px arcface_112_v2 crops, (x − mean)/std) or image (arcface_128 crops resized to the input). Default: the file's io_preset or template metadata, else from its inputs.")]
        public string? IoPreset { get; init; }

        [CommandOption("--mean <M>")]
        [Description("For an ONNX arcface or image model: input normalisation (x − M)/STD on the 0–255 scale. Default 127.5.")]
        public float? Mean { get; init; }

        [CommandOption("--std <STD>")]
        [Description("For an ONNX arcface or image model: see --mean. Default 127.5.")]
        public float? Std { get; init; }

        [CommandOption("-o|--output <FILE>")]
        [Description("The INT8 QDQ ONNX file to write.")]
        public string? Output { get; init; }

        public override ValidationResult Validate() =>
            Output is null ? ValidationResult.Error("-o|--output FILE is required")
            : Method is not ("minmax" or "percentile" or "entropy") ? ValidationResult.Error($"--method '{Method}': use minmax, percentile or entropy")
            : Calibration < 1 ? ValidationResult.Error("--calibration must be at least 1")
            : IoPreset is not null && !ModelIoPreset.Names.Contains(IoPreset) ? ValidationResult.Error($"--io-preset '{IoPreset}': use {string.Join(", ", ModelIoPreset.Names)}")
            : Std is <= 0 ? ValidationResult.Error("--std must be positive")
            : ValidateQuantization() is { } error ? ValidationResult.Error(error)
            : ValidationResult.Success();
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        if (File.Exists(settings.Model)) return QuantizeOnnx(settings);
        using var model = Checkpoint.Load(settings.Model);
        var method = QuantizationAware.ParseMethod(settings.Method);
        var data = settings.Dataset ?? Workspace.BundledDataset;
        var config = Config(settings, method);
        var prepared = PostTrainingQuantizer.Prepare(model, config, data, 1, new InlineProgress<string>(line => AnsiConsole.MarkupLineInterpolated($"  sensitivity {line}")));
        using var folded = prepared.Model;
        using var simulator = prepared.Simulator;
        var bytes = PostTrainingQuantizer.Export(prepared, settings.Calibration, method, new Dictionary<string, string> { ["source_checkpoint"] = Path.GetFullPath(settings.Model) }).ToByteArray();
        var output = Path.GetFullPath(settings.Output!);
        var dir = Path.GetDirectoryName(output)!;
        Directory.CreateDirectory(dir);
        // The floor is checked before the model is written: a broken INT8 file never appears.
        var sqnr = QuantAnalysis.Sqnr(folded, simulator, data);
        var sqnrCsv = QuantAnalysis.WriteSqnr(dir, sqnr);
        QuantAnalysis.RequireSqnrFloor(sqnr, config.MinSqnrDb, settings.Model, sqnrCsv);
        AtomicFile.WriteAllBytes(output, bytes);
        var kernels = PostTrainingQuantizer.InspectKernels(bytes);
        AnsiConsole.MarkupLineInterpolated($"wrote {settings.Output} ({bytes.Length / 1048576.0:0.00} MB, {method} calibration on {settings.Calibration} images)");
        AnsiConsole.MarkupLineInterpolated($"ONNX Runtime's optimised graph: {kernels.IntegerOps} integer kernels ({string.Join(", ", kernels.OpCounts.Where(kv => kv.Key.StartsWith("QLinear")).Select(kv => $"{kv.Key} ×{kv.Value}"))}), {kernels.FloatConvs} float convs");
        if (prepared.Sensitivity is { } rows)
        {
            var csv = QuantAnalysis.WriteSensitivity(dir, rows);
            AnsiConsole.MarkupLineInterpolated($"sensitivity mode kept float: {string.Join(", ", simulator.Policy.KeepFloat.Order())} ({csv})");
        }
        double parity = QuantAnalysis.Parity(folded, bytes, data);
        AnsiConsole.MarkupLineInterpolated($"parity ONNX Runtime INT8 vs TorchSharp fake-quant: {parity:0.0} dB PSNR");
        AnsiConsole.MarkupLineInterpolated($"worst SQNR: {string.Join(", ", sqnr.Take(5).Select(r => $"{r.Node} {r.SqnrDb:0.0} dB"))} (all in {sqnrCsv})");
        return 0;
    }

    private static QatConfig Config(Settings settings, CalibrationMethod method)
    {
        var config = PostTrainingQuantizer.Config(settings.Calibration, method);
        settings.ApplyTo(config);
        return config;
    }

    /// <summary>A user's own ONNX CNN: calibrated on the dataset's faces at its input size, INT8 QDQ, compared with the original.</summary>
    private static int QuantizeOnnx(Settings settings)
    {
        var method = QuantizationAware.ParseMethod(settings.Method);
        var config = Config(settings, method);
        var result = ImportedModelQuantizer.Quantize(settings.Model, settings.Dataset ?? Workspace.BundledDataset, config, settings.IoPreset, settings.Mean, settings.Std);
        var bytes = result.Model.ToByteArray();
        var output = Path.GetFullPath(settings.Output!);
        Directory.CreateDirectory(Path.GetDirectoryName(output)!);
        var sqnrCsv = QuantAnalysis.WriteSqnr(Path.GetDirectoryName(output)!, result.Sqnr);
        QuantAnalysis.RequireSqnrFloor(result.Sqnr, config.MinSqnrDb, settings.Model, sqnrCsv);
        AtomicFile.WriteAllBytes(output, bytes);
        var kernels = PostTrainingQuantizer.InspectKernels(bytes);
        AnsiConsole.MarkupLineInterpolated($"wrote {settings.Output} ({bytes.Length / 1048576.0:0.00} MB, {new FileInfo(settings.Model).Length / 1048576.0:0.00} MB before; {method} calibration on {settings.Calibration} inputs)");
        AnsiConsole.MarkupLineInterpolated($"io preset {result.Preset.Description}");
        AnsiConsole.MarkupLineInterpolated($"ONNX Runtime's optimised graph: {kernels.IntegerOps} integer kernels, {kernels.FloatConvs} float convs");
        AnsiConsole.MarkupLineInterpolated($"INT8 vs the FP32 original on held-out faces: {result.ParityDb:0.0} dB PSNR on '{result.Preset.Output}' over {(result.Preset.OutputRange is { } r ? $"its range {r}" : "the output range")}, mean output cosine {result.OutputCosine:0.0000}");
        AnsiConsole.MarkupLineInterpolated($"worst SQNR: {string.Join(", ", result.Sqnr.Take(5).Select(r => $"{r.Node} {r.SqnrDb:0.0} dB"))} (all in {sqnrCsv})");
        return 0;
    }
}
