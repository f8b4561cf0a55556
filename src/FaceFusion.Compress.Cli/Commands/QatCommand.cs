using System.ComponentModel;
using System.Globalization;
using System.Text.Json;
using FaceFusion.Compress.Assets;
using FaceFusion.Compress.Data;
using FaceFusion.Compress.Export;
using FaceFusion.Compress.Models.Checkpoints;
using FaceFusion.Compress.Quantization;
using FaceFusion.Compress.Training;
using Google.Protobuf;
using Spectre.Console;
using Spectre.Console.Cli;
using FaceFusion.Compress.Reporting;

namespace FaceFusion.Compress.Cli.Commands;

internal sealed class QatCommand : Command<QatCommand.Settings>
{
    public sealed class Settings : QuantizationSettings
    {
        [CommandArgument(0, "<MODEL>")]
        [Description("A trained float checkpoint folder.")]
        public string Model { get; init; } = "";

        [CommandOption("-c|--config <FILE>")]
        [Description("A training config (YAML) whose phases, loss weights and qat: section are used. Options below override its qat: keys.")]
        public string? Config { get; init; }

        [CommandOption("--steps <N>")]
        [Description("QAT fine-tuning steps at the model's resolution when no config is given. Default 300.")]
        public int? Steps { get; init; }

        [CommandOption("--lr <LR>")]
        [Description("Learning rate when no config is given. Default 5e-5.")]
        public double? LearningRate { get; init; }

        [CommandOption("--calibration <N>")]
        [Description("Train images for the initial activation ranges. Default 128.")]
        public int? Calibration { get; init; }

        [CommandOption("--calibration-method <M>")]
        [Description("minmax, percentile (default) or entropy (KL).")]
        public string? CalibrationMethod { get; init; }

        [CommandOption("--observer <O>")]
        [Description("moving_average (default) or minmax.")]
        public string? Observer { get; init; }

        [CommandOption("--freeze-after <K>")]
        [Description("Steps after which observers freeze. Default 100.")]
        public int? FreezeAfter { get; init; }

        [CommandOption("--learnable-scales")]
        [Description("LSQ-style learnable activation scales (observers off).")]
        public bool LearnableScales { get; init; }

        [CommandOption("--no-teacher")]
        [Description("Do not distil from the float model (by default QAT matches the float model's outputs).")]
        public bool NoTeacher { get; init; }

        [CommandOption("-o|--output <DIR>")]
        [Description("Output folder. Default artifacts/qat/<model>.")]
        public string? Output { get; init; }

        [CommandOption("--resume")]
        [Description("Continue from the output folder's latest checkpoint.")]
        public bool Resume { get; init; }

        public override ValidationResult Validate() =>
            Steps is < 1 ? ValidationResult.Error("--steps must be at least 1")
            : Calibration is < 1 ? ValidationResult.Error("--calibration must be at least 1")
            : ValidateQuantization() is { } error ? ValidationResult.Error(error)
            : ValidationResult.Success();
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var graph = Checkpoint.LoadGraph(settings.Model);
        if (QuantizationAware.IsQuantized(settings.Model))
            throw new InvalidOperationException($"{settings.Model}: already a QAT model; start from the float checkpoint");
        var config = settings.Config is null
            ? new TrainConfig
            {
                Phases = [new TrainPhase { Resolution = graph.Resolution, Steps = settings.Steps ?? 300 }],
                Optimizer = new OptimizerConfig { Lr = settings.LearningRate ?? 5e-5, Beta1 = 0.9 },
                AdversarialStartStep = int.MaxValue, // fine-tuning through quantizers: no discriminator
                CheckpointEvery = 50, SampleEvery = 100, EvalSplit = Splits.Val, EvalPairs = 64,
            }
            : TrainConfig.Load(settings.Config);
        config.Model = Path.GetFullPath(settings.Model);
        config.Resolution = graph.Resolution;
        if (settings.Dataset is not null) config.Data = Path.GetFullPath(settings.Dataset);
        if (!settings.NoTeacher) config.Teacher ??= config.Model;
        var q = config.Qat ?? new QatConfig();
        if (settings.Calibration is { } n) q.Calibration = n;
        if (settings.CalibrationMethod is { } m) q.CalibrationMethod = m;
        if (settings.Observer is { } o) q.Observer = o;
        if (settings.FreezeAfter is { } k) q.FreezeObserversAfter = k;
        if (settings.LearnableScales) q.LearnableScales = true;
        settings.ApplyTo(q);
        config.Qat = q;
        config.Output = settings.Output is not null ? Path.GetFullPath(settings.Output) : Path.Combine("artifacts", "qat", Path.GetFileName(Path.TrimEndingDirectorySeparator(settings.Model)));
        config.Validate(settings.Config ?? "qat options");

        var trainer = new SwapTrainer(config, AssetPaths.Locate(), Workspace.Root);
        long reached = 0;
        AnsiConsole.Progress().AutoRefresh(false) // rendered on the working thread: see InlineProgress
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("quantization-aware training", maxValue: config.TotalSteps);
                var progress = new InlineProgress<TrainProgress>(p =>
                {
                    task.Value = p.Step;
                    task.Description = string.Create(CultureInfo.InvariantCulture, $"QAT step {p.Step}/{p.TotalSteps} {p.ImagesPerSecond:0.0} img/s loss {p.Losses["total"]:0.000}");
                    ctx.Refresh();
                });
                reached = trainer.Train(settings.Resume, progress, null, cancellationToken);
                task.Value = reached;
            });
        if (reached < config.TotalSteps)
        {
            AnsiConsole.MarkupLineInterpolated($"stopped at step {reached}/{config.TotalSteps}; continue with --resume");
            return 0;
        }

        // Export exactly what was trained, then check ONNX Runtime against the TorchSharp simulation.
        var (model, simulator) = QuantizationAware.Load(trainer.ModelDir);
        using (model)
        using (simulator)
        {
            var proto = QuantizationAware.ExportInt8(model, simulator, metadata: new Dictionary<string, string> { ["source_checkpoint"] = Path.GetFullPath(settings.Model) });
            var bytes = proto.ToByteArray();
            var onnx = Path.Combine(trainer.OutputDir, "model-int8.onnx");
            var data = config.Data;
            var sqnr = QuantAnalysis.Sqnr(model, simulator, Workspace.Resolve(data));
            var sqnrCsv = QuantAnalysis.WriteSqnr(trainer.OutputDir, sqnr);
            QuantAnalysis.RequireSqnrFloor(sqnr, q.MinSqnrDb, trainer.ModelDir, sqnrCsv);
            AtomicFile.WriteAllBytes(onnx, bytes);
            double parity = QuantAnalysis.Parity(model, bytes, Workspace.Resolve(data));
            var kernels = PostTrainingQuantizer.InspectKernels(bytes);
            using var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(trainer.ModelDir, "metrics.json")));
            AnsiConsole.MarkupLineInterpolated($"wrote {onnx} ({bytes.Length / 1048576.0:0.00} MB); QAT model {trainer.ModelDir}");
            AnsiConsole.MarkupLineInterpolated($"simulated INT8 on {config.EvalSplit}: {metrics.RootElement}");
            AnsiConsole.MarkupLineInterpolated($"parity ONNX Runtime INT8 vs TorchSharp fake-quant: {parity:0.0} dB PSNR {(parity >= 35 ? "(≥ 35 dB)" : "[red](below 35 dB)[/]")}");
            AnsiConsole.MarkupLineInterpolated($"ONNX Runtime's optimised graph: {kernels.IntegerOps} integer kernels, {kernels.FloatConvs} float convs");
            AnsiConsole.MarkupLineInterpolated($"worst SQNR: {string.Join(", ", sqnr.Take(5).Select(r => $"{r.Node} {r.SqnrDb:0.0} dB"))} (all in {sqnrCsv})");
            // QAT keeps training, so the fair FP32 reference is the same trained weights without quantization.
            var (floatPsnr, int8Psnr) = QuantAnalysis.FloatVsInt8(model, Workspace.Resolve(data), config.EvalSplit);
            var sameWeights = Path.Combine(trainer.OutputDir, "model-fp32.onnx");
            model.Quantization = null;
            OnnxExporter.ExportToFile(model, sameWeights, new ExportOptions { MergeSiblingConvs = true, Metadata = new Dictionary<string, string> { ["source_checkpoint"] = trainer.ModelDir } });
            model.Quantization = simulator;
            double drop = floatPsnr - int8Psnr;
            AnsiConsole.MarkupLineInterpolated($"same weights on {config.EvalSplit}: float {floatPsnr:0.00} dB, INT8 (simulated) {int8Psnr:0.00} dB, drop {drop:0.00} dB {(drop <= 0.3 ? "(≤ 0.3 dB)" : "(above 0.3 dB)")}; float export {sameWeights} (ffc bench MODEL-int8 --baseline it)");
        }
        return 0;
    }
}
