using System.ComponentModel;
using System.Globalization;
using FaceFusion.Compress.Assets;
using FaceFusion.Compress.Data;
using FaceFusion.Compress.Judging;
using FaceFusion.Compress.Reporting;
using FaceFusion.Compress.Runtime;
using FaceFusion.Compress.Training;
using Spectre.Console;
using Spectre.Console.Cli;

namespace FaceFusion.Compress.Cli.Commands;

/// <summary>
/// The issue-21 swap metrics for ONNX swappers and the copy-target baseline, on the held-in and unseen pair sets,
/// on the crop and (for a subset) through the whole swap path: printed as tables, written as judge.csv and judge.md.
/// </summary>
internal sealed class BenchmarkSwapJudgeCommand : Command<BenchmarkSwapJudgeCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--model <SWAPPER.onnx>")]
        [Description("An ONNX swapper; repeat for several (all at one resolution).")]
        public string[] Models { get; init; } = [];

        [CommandOption("--dataset <DIR>")]
        [Description("Prepared dataset folder. Default datasets/bundled.")]
        public string? Dataset { get; init; }

        [CommandOption("--pairs <N>")]
        [Description("Held-in pairs (both directions together). Default 64.")]
        public int Pairs { get; init; } = 64;

        [CommandOption("--full-frame <N>")]
        [Description("Pairs of each set also measured through the whole swap path (paste back, detect, align, judge). Default 8; 0 skips it.")]
        public int FullFrame { get; init; } = 8;

        [CommandOption("--threads <N>")]
        [Description("ONNX Runtime intra-op threads. Default: all cores.")]
        public int Threads { get; init; }

        [CommandOption("-o|--output <DIR>")]
        [Description("Folder for judge.csv (appended) and judge.md. Default artifacts/bench/swap-judge.")]
        public string? Output { get; init; }

        public override ValidationResult Validate() =>
            Models.Length == 0 ? ValidationResult.Error("give at least one --model SWAPPER.onnx")
            : Pairs < 2 ? ValidationResult.Error("--pairs must be at least 2")
            : FullFrame < 0 ? ValidationResult.Error("--full-frame must be ≥ 0")
            : ValidationResult.Success();
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var assets = AssetPaths.Locate();
        string dataDir = Workspace.Resolve(settings.Dataset ?? Workspace.BundledDataset);
        var manifestPath = Path.Combine(dataDir, FaceManifest.FileName);
        if (!File.Exists(manifestPath)) throw new FileNotFoundException($"{manifestPath}: no prepared dataset (run `ffc data prepare`)", manifestPath);
        var ort = new OrtSettings { IntraOpThreads = settings.Threads };
        var swappers = settings.Models.Select(m =>
        {
            if (!File.Exists(m)) throw new FileNotFoundException($"{m}: model file not found", m);
            return new OrtSwapper(m, ort);
        }).ToList();
        try
        {
            int r = swappers[0].Resolution;
            var other = swappers.FirstOrDefault(s => s.Resolution != r);
            if (other is not null) throw new InvalidDataException($"{other.Path}: runs at {other.Resolution} px, {swappers[0].Path} at {r} px; give models of one resolution");
            using var data = new FaceSwapData(dataDir, Splits.Test, r);
            var train = SwapJudging.TrainIdentities(dataDir);
            var sets = new[] { SwapJudging.HeldInPairs(data, train, settings.Pairs), SwapJudging.UnseenPairs(data, train) };
            using var judge = IdentityJudge.Open(assets);
            using var landmarks = new LandmarkDetector(assets.Landmarks, ort);
            using var detector = new FaceDetector(assets.Detector, ort);
            var rows = new List<SwapJudgeRow>();
            var candidates = new List<(string Name, OrtSwapper? Swapper)> { (SwapJudging.CopyTarget, null) };
            candidates.AddRange(swappers.Select(s => (Path.GetFileNameWithoutExtension(s.Path), (OrtSwapper?)s)));
            foreach (var set in sets)
                foreach (var (name, swapper) in candidates)
                {
                    AnsiConsole.MarkupLineInterpolated($"[grey]{name}: {set.Name}, {set.Count} pairs on the crop[/]");
                    rows.Add(SwapJudging.Measure(name, swapper is null ? SwapJudging.CopyTargetSwap : SwapJudging.OrtSwap(swapper), data, set, judge, landmarks));
                    if (settings.FullFrame == 0) continue;
                    var subset = set.Subset(settings.FullFrame);
                    AnsiConsole.MarkupLineInterpolated($"[grey]{name}: {set.Name}, {subset.Count} pairs through the whole swap path[/]");
                    using var pipeline = swapper is null ? null : new FaceSwapPipeline(assets, swapper.Path, new SwapOptions { Ort = ort });
                    rows.Add(SwapJudging.MeasureFullFrame(name, pipeline, data, subset, dataDir, assets, judge, detector, landmarks));
                }
            SwapJudging.FlagSwaps(rows);
            Print(rows, sets, data);
            var dir = settings.Output ?? Path.Combine(Workspace.Root, "artifacts", "bench", "swap-judge");
            Directory.CreateDirectory(dir);
            CsvAppend.Append(Path.Combine(dir, "judge.csv"), rows);
            AtomicFile.WriteAllText(Path.Combine(dir, "judge.md"), $"# Swap judge\n\n{Describe(sets, data, r)}\n\n{SwapJudging.Markdown(rows)}\nCPU: {CpuInfo.Describe}\n");
            AnsiConsole.WriteLine($"wrote {Path.Combine(dir, "judge.csv")} and judge.md");
            return 0;
        }
        finally
        {
            foreach (var s in swappers) s.Dispose();
        }
    }

    private static string Describe(IReadOnlyList<JudgePairSet> sets, FaceSwapData data, int r) =>
        $"{r}-px crops of the `test` split; held-in: {sets[0].Count} pairs of {string.Join(" and ", sets[0].Targets.Select(t => data.Records[t].Identity).Distinct())} (targets ↔ sources, both directions); " +
        $"unseen: {sets[1].Count} still-photo faces of {sets[1].Sources.Select(s => data.Records[s].Identity).Distinct().Count()} identities outside train as sources onto held-in targets " +
        $"({string.Join(", ", sets[1].Sources.Select(s => data.Records[s].Identity).Distinct())}). Judge: face-api FaceRecognitionNet on the dlib box, same person below {IdentityJudge.SameThreshold.ToString(CultureInfo.InvariantCulture)}. " +
        $"A model is flagged \"does not swap\" when its judge_source_rate is within {SwapJudging.SwapMargin.ToString(CultureInfo.InvariantCulture)} of copy-target's.";

    private static void Print(List<SwapJudgeRow> rows, IReadOnlyList<JudgePairSet> sets, FaceSwapData data)
    {
        SwapJudgeTable.Write(rows);
        AnsiConsole.WriteLine(Describe(sets, data, data.Resolution));
        AnsiConsole.WriteLine($"CPU: {CpuInfo.Describe}");
    }
}
