using System.ComponentModel;
using System.Diagnostics;
using FaceFusion.Compress.Data;
using FaceFusion.Compress.Reporting;
using FaceFusion.Compress.Runtime;
using Spectre.Console;
using Spectre.Console.Cli;

namespace FaceFusion.Compress.Cli.Commands;

/// <summary>
/// Batch-1 latency of several swappers measured in interleaved rounds, so background load affects them alike:
/// the fair way to compare FP32 with INT8 or a pruned model with its original.
/// </summary>
internal sealed class BenchmarkLatencyCommand : Command<BenchmarkLatencyCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandArgument(0, "<MODELS>")]
        [Description("Two or more swapper ONNX files (same resolution).")]
        public string[] Models { get; init; } = [];

        [CommandOption("--rounds <N>")]
        [Description("Interleaved rounds (one run of each model per round). Default 60.")]
        public int Rounds { get; init; } = 60;

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
        // Sessions take turns: without spinning, one session's idle threads do not steal the running one's cores.
        var ort = new OrtSettings { IntraOpThreads = settings.Threads, AllowSpinning = false };
        var swappers = settings.Models.Select(m => new OrtSwapper(m, ort)).ToList();
        try
        {
            int r = swappers[0].Resolution;
            if (swappers.Any(s => s.Resolution != r)) throw new ArgumentException("all models must take the same resolution");
            var rng = new Random(1);
            var target = Enumerable.Range(0, 3 * r * r).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
            var source = IdentityEmbedder.Normalize(Enumerable.Range(0, 512).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray());
            foreach (var s in swappers) for (int i = 0; i < 5; i++) s.Run(target, source, 1);
            var times = swappers.Select(_ => new List<double>()).ToList();
            for (int round = 0; round < settings.Rounds; round++)
                for (int k = 0; k < swappers.Count; k++)
                {
                    var w = Stopwatch.StartNew();
                    swappers[k].Run(target, source, 1);
                    times[k].Add(w.Elapsed.TotalMilliseconds);
                }
            double reference = SwapBench.Percentile(times[0], 50);
            var table = new Table().Title($"interleaved batch-1 latency, {settings.Rounds} rounds, {ort.EffectiveThreads} threads").AddColumns("model", "p50 ms", "p90 ms", "vs first");
            for (int k = 0; k < swappers.Count; k++)
            {
                double p50 = SwapBench.Percentile(times[k], 50);
                table.AddRow(Path.GetFileName(settings.Models[k]), $"{p50:0.00}", $"{SwapBench.Percentile(times[k], 90):0.00}", $"{p50 / reference:0.00}×");
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
        }
        finally
        {
            foreach (var s in swappers) s.Dispose();
        }
        return 0;
    }
}
