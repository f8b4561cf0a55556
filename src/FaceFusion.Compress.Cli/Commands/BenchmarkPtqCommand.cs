using System.ComponentModel;
using System.Globalization;
using FaceFusion.Compress.Assets;
using FaceFusion.Compress.Quantization;
using FaceFusion.Compress.Reporting;
using FaceFusion.Compress.Runtime;
using Spectre.Console;
using Spectre.Console.Cli;

namespace FaceFusion.Compress.Cli.Commands;

/// <summary>The PTQ table of issue 27: every calibration method on the kept teacher and the bundled recogniser.</summary>
internal sealed class BenchmarkPtqCommand : Command<BenchmarkPtqCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--teacher <CHECKPOINT>")]
        [Description("The swapper checkpoint. Default datasets/pretrained/teacher-128.")]
        public string? Teacher { get; init; }

        [CommandOption("--recogniser <ONNX>")]
        [Description("An FP32 recogniser ONNX. Default the bundled fr_feature.onnx ((x − 127)/128).")]
        public string? Recogniser { get; init; }

        [CommandOption("--calibration <N>")]
        [Description("Calibration images per run. Default 128.")]
        public int Calibration { get; init; } = 128;

        [CommandOption("--pairs <N>")]
        [Description("`test` same-identity pairs for the swapper's fidelity and PSNR. Default 64.")]
        public int Pairs { get; init; } = 64;

        [CommandOption("--dataset <DIR>")]
        [Description("Prepared dataset. Default datasets/bundled.")]
        public string? Dataset { get; init; }

        [CommandOption("-o|--output <DIR>")]
        [Description("Output folder (the INT8 files and ptq_benchmark.csv). Default artifacts/bench/ptq.")]
        public string? Output { get; init; }

        public override ValidationResult Validate() =>
            Calibration < 1 ? ValidationResult.Error("--calibration must be at least 1")
            : Pairs < 1 ? ValidationResult.Error("--pairs must be at least 1")
            : ValidationResult.Success();
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var assets = AssetPaths.Locate();
        var options = new PtqBenchmark.Options
        {
            Teacher = settings.Teacher ?? Path.Combine(Workspace.Root, "datasets", "pretrained", "teacher-128"),
            Recogniser = settings.Recogniser ?? assets.IdentityEmbedder,
            DataDir = Workspace.Resolve(settings.Dataset ?? Workspace.BundledDataset),
            OutputDir = settings.Output ?? Path.Combine(Workspace.Root, "artifacts", "bench", "ptq"),
            Calibration = settings.Calibration, Pairs = settings.Pairs,
        };
        var (rows, floors) = PtqBenchmark.Run(options, new InlineProgress<string>(s => AnsiConsole.MarkupLineInterpolated($"  {s}")));
        static string F(double v, string f) => double.IsPositiveInfinity(v) ? "∞" : double.IsFinite(v) ? v.ToString(f, CultureInfo.InvariantCulture) : "—";
        var table = new Table().Title($"PTQ: every method, {settings.Calibration} calibration images ({CpuInfo.Describe})")
            .AddColumns("model", "method", "path", "fidelity to FP32 dB", "PSNR dB", "output cosine", "worst SQNR dB", "size", "p50 ms", "latency vs FP32", "note");
        foreach (var r in rows)
            table.AddRow(Markup.Escape(r.Model), r.Method, r.Path, F(r.FidelityDb, "0.00"), F(r.PsnrDb, "0.00"), F(r.OutputCosine, "0.0000"), F(r.WorstSqnrDb, "0.0"),
                r.SizeRatio.ToString("P1", CultureInfo.InvariantCulture), F(r.P50Ms, "0.00"), F(r.LatencyRatio, "0.00") + (double.IsFinite(r.LatencyRatio) ? "×" : ""), Markup.Escape(r.Note));
        AnsiConsole.Write(table);
        foreach (var f in floors)
            AnsiConsole.MarkupLine($"floor: {Markup.Escape(f.Name)}: {(f.Outcome == "met" ? "[green]met[/]" : $"[red]{Markup.Escape(f.Outcome)}[/]")} ({Markup.Escape(f.Detail)})");
        AnsiConsole.MarkupLineInterpolated($"wrote {Path.Combine(options.OutputDir, "ptq_benchmark.csv")}");
        return 0;
    }
}
