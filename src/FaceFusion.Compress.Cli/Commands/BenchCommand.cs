using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using FaceFusion.Compress.Assets;
using FaceFusion.Compress.Reporting;
using FaceFusion.Compress.Runtime;
using Spectre.Console;
using Spectre.Console.Cli;

namespace FaceFusion.Compress.Cli.Commands;

internal sealed class BenchCommand : Command<BenchCommand.Settings>
{
    public sealed class Settings : ModelInputSettings
    {
        [CommandArgument(0, "<MODEL.onnx>")]
        [Description("An exported swapper (FaceFusion IO: target, source → output [[, mask]]), or any other ONNX model: then load time, latency, throughput, size and precision only.")]
        public string Model { get; init; } = "";



        [CommandOption("--reference <CHECKPOINT>")]
        [Description("The TorchSharp checkpoint it was exported from: parity PSNR and max abs error.")]
        public string? Reference { get; init; }

        [CommandOption("--teacher <T.onnx>")]
        [Description("A teacher ONNX model: PSNR of this model's outputs against the teacher's.")]
        public string? Teacher { get; init; }

        [CommandOption("--data <SPLIT>")]
        [Description("Evaluation split of the dataset: test (default), val or train.")]
        public string Split { get; init; } = "test";

        [CommandOption("--dataset <DIR>")]
        [Description("Prepared dataset folder. Default datasets/bundled.")]
        public string? Dataset { get; init; }

        [CommandOption("--threads <N>")]
        [Description("Intra-op threads. Default: all cores.")]
        public int Threads { get; init; }

        [CommandOption("--runs <N>")]
        [Description("Timed batch-1 runs (at least 50). Default 50.")]
        public int Runs { get; init; } = 50;

        [CommandOption("--pairs <N>")]
        [Description("Evaluation pairs. Default 64.")]
        public int Pairs { get; init; } = 64;

        [CommandOption("--judge-pairs <N>")]
        [Description("Held-in pairs (both directions) for the swap judge's columns, against a copy-target baseline; the unseen set is capped at the same number. Default 64.")]
        public int JudgePairs { get; init; } = 64;

        [CommandOption("--judge-full-frame <N>")]
        [Description("Pairs of each set also judged through the whole ffc swap path (paste back, detect again, align), beside copy-target. Default 8; 0: crop only.")]
        public int JudgeFullFrame { get; init; } = 8;

        [CommandOption("--baseline <FP32.onnx>")]
        [Description("For an INT8 model: the FP32 model to compare latency with (else the FP32 row of the same architecture in bench.csv).")]
        public string? Baseline { get; init; }

        [CommandOption("-o|--output <DIR>")]
        [Description("Bench folder for bench.csv (appended), slices.csv, throughput.csv, plots, bench.md. Default artifacts/bench.")]
        public string? Output { get; init; }

        [CommandOption("--embedder <ONNX>")]
        [Description("The identity embedder the model was trained with (identity_embedder): sources are embedded with it and identity cosine is measured with it. Default: the bundled fr_feature.onnx.")]
        public string? Embedder { get; init; }

        [CommandOption("--embedder-normalization <N>")]
        [Description("ffc ((x − 127)/128, default) or insightface ((x − 127.5)/127.5).")]
        public string EmbedderNormalization { get; init; } = "ffc";

        public override ValidationResult Validate() =>
            Split is not ("train" or "val" or "test") ? ValidationResult.Error($"--data '{Split}': use train, val or test")
            : EmbedderNormalization is not ("ffc" or "insightface") ? ValidationResult.Error($"--embedder-normalization '{EmbedderNormalization}': use ffc or insightface")
            : JudgePairs < 2 ? ValidationResult.Error("--judge-pairs must be at least 2 (one pair per direction)")
            : JudgeFullFrame < 0 ? ValidationResult.Error("--judge-full-frame must be ≥ 0")
            : ValidationResult.Success();
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var ort = new OrtSettings { IntraOpThreads = settings.Threads };
        double? freshLoad = MeasureLoadInFreshProcess(settings.Model, settings.Threads);
        var options = new BenchOptions
        {
            ModelPath = settings.Model, Reference = settings.Reference, Teacher = settings.Teacher, Split = settings.Split,
            DataDir = settings.Dataset ?? Workspace.BundledDataset, Runs = settings.Runs, Pairs = settings.Pairs, Ort = ort, FreshProcessLoadMs = freshLoad,
            Embedder = settings.Embedder, EmbedderNormalization = settings.EmbedderNormalization, JudgePairs = settings.JudgePairs, JudgeFullFrame = settings.JudgeFullFrame,
        };
        BenchResult result = null!;
        bool swapper = ModelBench.IsSwapper(settings.Model);
        if (swapper && (settings.Shapes.Length > 0 || settings.Inputs.Length > 0))
            throw new ArgumentException($"{settings.Model}: a swapper is benched on the dataset's faces; --shape and --input are for other models");
        var (shapes, files) = ModelInputOptions.Parse(settings.Shapes, settings.Inputs, [settings.Model]);
        AnsiConsole.Status().AutoRefresh(false).Start("benchmarking", ctx => // rendered on the working thread: see InlineProgress
        {
            var status = new InlineProgress<string>(s => { ctx.Status($"benchmarking: {s}"); ctx.Refresh(); });
            result = swapper ? SwapBench.Run(options, AssetPaths.Locate(), status) : ModelBench.Run(options, shapes, files, status);
        });
        if (!swapper) AnsiConsole.MarkupLineInterpolated($"{settings.Model}: not a swapper (no target/source → output): timing, size and precision only; quality columns are empty");
        if (result.EmbedderMismatch is { } warning) AnsiConsole.MarkupLineInterpolated($"[yellow]warning:[/] {warning}");
        var dir = settings.Output ?? Path.Combine(Workspace.Root, "artifacts", "bench");
        var rows = BenchReport.Write(dir, result);
        string F(double? v, string f) => v is double d && double.IsFinite(d) ? d.ToString(f, CultureInfo.InvariantCulture) : "—";
        var table = new Table().Title($"bench ({rows.Count} rows in {Path.Combine(dir, BenchReport.BenchCsv)}; all columns in bench.md)")
            .AddColumns("model", "prec", "R", "GMAC", "load ms", "p50 ms", "torch p50", "fps", "parity dB", "PSNR", "SSIM", "id cos", "vs T dB", "judge src", "swaps?");
        foreach (var r in rows.GroupBy(r => r.Model).Select(g => g.Last()))
            table.AddRow(r.Model, r.Precision, r.Resolution.ToString(), F(r.Macs / 1e9, "0.000"), F(r.LoadMs, "0.0"), F(r.P50Ms, "0.00"),
                F(r.TorchP50Ms, "0.00"), F(r.Fps, "0.0"), F(r.ParityPsnrDb, "0.0"), F(r.PsnrDb, "0.00"), F(r.Ssim, "0.000"), F(r.IdCosine, "0.000"),
                F(r.PsnrVsTeacherDb, "0.00"), F(r.JudgeSourceRate, "0.000"), SwapJudgeTable.Cell(r.Swaps));
        AnsiConsole.Write(table);
        // The judge's verdicts on this model beside copy-target: a model that only copies its target shows here.
        SwapJudgeTable.Write(result.Judge);
        foreach (var note in result.JudgeNotes) AnsiConsole.MarkupLineInterpolated($"[yellow]note:[/] swap judge, not measured: {note}");
        if (swapper)
        {
            var slices = new Table().Title($"slices of {result.Row.Model}").AddColumns("slice", "count", "PSNR dB", "SSIM", "id cos");
            foreach (var s in result.Slices) slices.AddRow(s.Slice, s.Count.ToString(), F(s.PsnrDb, "0.00"), F(s.Ssim, "0.000"), F(s.IdCosine, "0.000"));
            AnsiConsole.Write(slices);
            var serving = new Table().Title($"one session, several caller threads ({result.Row.Threads} intra-op threads each)").AddColumns("callers", "requests", "images/s", "p50 ms");
            foreach (var t in result.Throughput) serving.AddRow(t.Callers.ToString(), t.Requests.ToString(), $"{t.ImagesPerS:0.0}", $"{t.P50Ms:0.00}");
            AnsiConsole.Write(serving);
        }
        AnsiConsole.MarkupLineInterpolated($"report: {Path.Combine(dir, BenchReport.BenchMarkdown)}");
        if (result.Precision is { MetadataDisagrees: true } p)
            AnsiConsole.MarkupLineInterpolated($"[yellow]note:[/] {settings.Model}: its metadata says precision '{p.MetadataPrecision}', its graph is {p.Precision} ({p.Evidence}); bench.csv records {p.Precision}");
        if (result.Row.Precision == "int8")
        {
            // INT8 exists to be faster: say so loudly when it is not.
            double? fp32 = settings.Baseline is not null
                ? BaselineP50(settings.Baseline, ort, shapes, files)
                : rows.LastOrDefault(r => r.Precision == "fp32" && r.Macs > 0 && r.Macs == result.Row.Macs && r.Resolution == result.Row.Resolution)?.P50Ms; // MACs: BatchNorm folding changes params, not MACs
            if (fp32 is null) AnsiConsole.MarkupLine("[yellow]note:[/] no FP32 counterpart to compare this INT8 model with (give --baseline FP32.onnx)");
            else if (result.Row.P50Ms >= fp32.Value)
                AnsiConsole.MarkupLineInterpolated($"[red bold]WARNING: this INT8 model is NOT faster than its FP32 counterpart ({result.Row.P50Ms:0.00} ms vs {fp32.Value:0.00} ms p50)[/]");
            else AnsiConsole.MarkupLineInterpolated($"INT8 p50 is {result.Row.P50Ms / fp32.Value:0.00}× its FP32 counterpart's ({result.Row.P50Ms:0.00} vs {fp32.Value:0.00} ms)");
            if (!CpuInfo.HasVnni)
                AnsiConsole.MarkupLineInterpolated($"[yellow]note:[/] this CPU ({CpuInfo.Describe}) has no VNNI 8-bit dot product: ONNX Runtime's INT8 kernels gain much less here than on AVX-512 VNNI machines");
        }
        return 0;
    }

    private static double BaselineP50(string model, OrtSettings ort, IReadOnlyDictionary<string, int[]> shapes, IReadOnlyDictionary<string, string> files)
    {
        if (ModelBench.IsSwapper(model))
        {
            using var swapper = new OrtSwapper(model, ort);
            return SwapBench.P50Ms(swapper);
        }
        return InterleavedLatency.Measure([model], rounds: 50, threads: ort.IntraOpThreads, shapes: shapes, files: files)[0].P50Ms;
    }

    /// <summary>Runs `ffc bench-load-probe` in a new process: the first session of a fresh process, file in the page cache.</summary>
    private static double? MeasureLoadInFreshProcess(string model, int threads)
    {
        if (!File.Exists(model)) throw new FileNotFoundException($"{model}: model file not found", model);
        var self = Environment.GetCommandLineArgs()[0];
        var psi = self.EndsWith(".dll", StringComparison.OrdinalIgnoreCase) ? new ProcessStartInfo("dotnet") : new ProcessStartInfo(Environment.ProcessPath!);
        if (self.EndsWith(".dll", StringComparison.OrdinalIgnoreCase)) psi.ArgumentList.Add(self);
        foreach (var a in new[] { "bench-load-probe", model, "--threads", threads.ToString(CultureInfo.InvariantCulture) }) psi.ArgumentList.Add(a);
        psi.RedirectStandardOutput = true; psi.RedirectStandardError = true; psi.UseShellExecute = false;
        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEnd();
        var error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        var line = output.Split('\n').FirstOrDefault(l => l.StartsWith("load_ms="));
        if (p.ExitCode != 0 || line is null) throw new InvalidDataException($"{model}: cannot load in ONNX Runtime ({error.Trim()})");
        return double.Parse(line["load_ms=".Length..], CultureInfo.InvariantCulture);
    }
}

/// <summary>Hidden helper of `ffc bench`: prints the time to create the first session of this process.</summary>
internal sealed class BenchLoadProbeCommand : Command<BenchLoadProbeCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandArgument(0, "<MODEL.onnx>")] public string Model { get; init; } = "";
        [CommandOption("--threads <N>")] public int Threads { get; init; }
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var ms = SwapBench.MeasureLoadMs(settings.Model, new OrtSettings { IntraOpThreads = settings.Threads });
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"load_ms={ms:0.###}"));
        return 0;
    }
}
