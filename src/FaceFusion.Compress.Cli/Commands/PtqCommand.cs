using System.ComponentModel;
using FaceFusion.Compress.Export;
using FaceFusion.Compress.Models.Checkpoints;
using FaceFusion.Compress.Quantization;
using Google.Protobuf;
using Spectre.Console;
using Spectre.Console.Cli;

namespace FaceFusion.Compress.Cli.Commands;

internal sealed class PtqCommand : Command<PtqCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandArgument(0, "<MODEL>")]
        [Description("A trained checkpoint folder.")]
        public string Model { get; init; } = "";

        [CommandOption("--calibration <N>")]
        [Description("Train images used to calibrate activation ranges. Default 128.")]
        public int Calibration { get; init; } = 128;

        [CommandOption("--method <M>")]
        [Description("minmax (default) or percentile (99.99 %).")]
        public string Method { get; init; } = "minmax";

        [CommandOption("--keep-float <NODES>")]
        [Description("Comma-separated conv nodes that stay float in addition to the default policy.")]
        public string? KeepFloat { get; init; }

        [CommandOption("--int8-skips")]
        [Description("Also quantize adds, concats, resizes and gates (faster small models; the default keeps skips float).")]
        public bool Int8Skips { get; init; }

        [CommandOption("--dataset <DIR>")]
        [Description("Prepared dataset. Default datasets/bundled.")]
        public string? Dataset { get; init; }

        [CommandOption("-o|--output <FILE>")]
        [Description("The INT8 QDQ ONNX file to write.")]
        public string? Output { get; init; }

        public override ValidationResult Validate() =>
            Output is null ? ValidationResult.Error("-o|--output FILE is required")
            : Method is not ("minmax" or "percentile") ? ValidationResult.Error($"--method '{Method}': use minmax or percentile")
            : Calibration < 1 ? ValidationResult.Error("--calibration must be at least 1")
            : ValidationResult.Success();
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        using var model = Checkpoint.Load(settings.Model);
        var policy = new QuantPolicy { QuantizeSkips = settings.Int8Skips, KeepFloat = (settings.KeepFloat ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet() };
        var method = settings.Method == "percentile" ? CalibrationMethod.Percentile : CalibrationMethod.MinMax;
        var proto = PostTrainingQuantizer.Quantize(model, settings.Dataset ?? Workspace.BundledDataset, settings.Calibration, method, policy,
            new Dictionary<string, string> { ["source_checkpoint"] = Path.GetFullPath(settings.Model) });
        var bytes = proto.ToByteArray();
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(settings.Output!))!);
        File.WriteAllBytes(settings.Output + ".partial", bytes);
        File.Move(settings.Output + ".partial", settings.Output!, overwrite: true);
        var kernels = PostTrainingQuantizer.InspectKernels(bytes);
        AnsiConsole.MarkupLineInterpolated($"wrote {settings.Output} ({bytes.Length / 1048576.0:0.00} MB, {method} calibration on {settings.Calibration} images)");
        AnsiConsole.MarkupLineInterpolated($"ONNX Runtime's optimised graph: {kernels.IntegerOps} integer kernels ({string.Join(", ", kernels.OpCounts.Where(kv => kv.Key.StartsWith("QLinear")).Select(kv => $"{kv.Key} ×{kv.Value}"))}), {kernels.FloatConvs} float convs");
        return 0;
    }
}
