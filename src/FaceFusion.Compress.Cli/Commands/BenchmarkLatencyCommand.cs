using System.Globalization;
using System.ComponentModel;
using FaceFusion.Compress.Reporting;
using FaceFusion.Compress.Runtime;
using Spectre.Console;
using Spectre.Console.Cli;

namespace FaceFusion.Compress.Cli.Commands;

/// <summary>
/// Batch-1 latency of one or more ONNX models (swappers, recognisers, detectors, …) measured in interleaved rounds,
/// so background load affects them alike: the fair way to compare FP32 with INT8 or a pruned model with its original.
/// </summary>
internal sealed class BenchmarkLatencyCommand : Command<BenchmarkLatencyCommand.Settings>
{
    public sealed class Settings : ModelInputSettings
    {
        [CommandArgument(0, "<MODELS>")]
        [Description("One or more ONNX files: swappers (same resolution) or any other model (inputs made up or given with --input).")]
        public string[] Models { get; init; } = [];

        [CommandOption("--rounds <N>")]
        [Description("Interleaved rounds (one run of each model per round). Default 60.")]
        public int Rounds { get; init; } = 60;

        [CommandOption("--repeats <N>")]
        [Description("Repeat the rounds N times, each repeat starting with the next model, and give each ratio to the first model with its range over the repeats. Default 1.")]
        public int Repeats { get; init; } = 1;

        [CommandOption("--op-profile")]
        [Description("Also print where each model's time goes: ONNX Runtime kernel time per op type (profiler on, separate runs).")]
        public bool OpProfile { get; init; }

        [CommandOption("--node-profile <N>")]
        [Description("Also print each model's N most expensive nodes of ONNX Runtime's optimised graph (profiler on, separate runs).")]
        public int NodeProfile { get; init; }



        [CommandOption("--threads <N>")]
        [Description("Intra-op threads. Default: all cores.")]
        public int Threads { get; init; }
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var ort = new OrtSettings { IntraOpThreads = settings.Threads, AllowSpinning = false };
        if (settings.Repeats < 1) throw new ArgumentException("--repeats must be at least 1");
        if (settings.Rounds < 1) throw new ArgumentException("--rounds must be at least 1");
        if (settings.Models.Length == 0) throw new ArgumentException("give at least one ONNX model");
        var (shapes, files) = ModelInputOptions.Parse(settings.Shapes, settings.Inputs, settings.Models);
        var times = InterleavedLatency.Measure(settings.Models, settings.Rounds, settings.Threads, settings.Repeats, shapes, files);
        double reference = times[0].P50Ms;
        var table = new Table().Title($"interleaved batch-1 latency, {settings.Rounds} rounds{(settings.Repeats > 1 ? $" × {settings.Repeats} repeats" : "")}, {ort.EffectiveThreads} threads")
            .AddColumns("model", "p50 ms", "p90 ms", "vs first");
        foreach (var t in times)
        {
            // With repeats: the median of the per-repeat ratios to the first model, and their range.
            string ratio = settings.Repeats > 1 && t.RatioTo(times[0]) is var (median, min, max)
                ? string.Create(CultureInfo.InvariantCulture, $"{median:0.00}× ({min:0.00}–{max:0.00})")
                : $"{t.P50Ms / reference:0.00}×";
            table.AddRow(Path.GetFileName(t.ModelPath), $"{t.P50Ms:0.00}", $"{t.P90Ms:0.00}", ratio);
        }
        AnsiConsole.Write(table);
        if (settings.OpProfile)
            foreach (var model in settings.Models)
            {
                var ops = OpProfiler.Profile(model, 30, ort);
                var profile = new Table().Title($"{Path.GetFileName(model)}: kernel time per op type").AddColumns("op", "nodes", "ms/run", "share");
                foreach (var op in ops.Take(12)) profile.AddRow(op.OpType, op.Nodes.ToString(), $"{op.MsPerRun:0.00}", $"{op.Share:P0}");
                AnsiConsole.Write(profile);
            }
        if (settings.NodeProfile > 0)
            foreach (var model in settings.Models)
            {
                var nodes = OpProfiler.ProfileNodes(model, 30, ort);
                var profile = new Table().Title($"{Path.GetFileName(model)}: {settings.NodeProfile} most expensive nodes").AddColumns("node", "op", "ms/run", "share");
                foreach (var n in nodes.Take(settings.NodeProfile)) profile.AddRow(Markup.Escape(n.Node), n.OpType, $"{n.MsPerRun:0.000}", $"{n.Share:P1}");
                AnsiConsole.Write(profile);
            }
        return 0;
    }
}
