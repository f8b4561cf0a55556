using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using FaceFusion.Compress.Assets;
using FaceFusion.Compress.Training;
using FaceFusion.Compress.Reporting;
using Spectre.Console;
using Spectre.Console.Cli;

namespace FaceFusion.Compress.Cli.Commands;

/// <summary>Measures training throughput (images/s) of the built-in swappers; prints it, asserts nothing.</summary>
internal sealed class BenchmarkTrainCommand : Command<BenchmarkTrainCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--models <LIST>")]
        [Description("Architectures, comma separated. Default teacher,student.")]
        public string Models { get; init; } = "teacher,student";

        [CommandOption("--resolutions <LIST>")]
        [Description("Training resolutions, comma separated. Default 64,128.")]
        public string Resolutions { get; init; } = "64,128";

        [CommandOption("--steps <N>")]
        [Description("Timed steps per case after 2 warm-up steps. Default 5.")]
        public int Steps { get; init; } = 5;

        [CommandOption("--batch <N>")]
        [Description("Batch size. Default 8.")]
        public int Batch { get; init; } = 8;

        [CommandOption("--data <DIR>")]
        [Description("Prepared dataset. Default datasets/bundled.")]
        public string? Data { get; init; }
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var assets = AssetPaths.Locate();
        var data = settings.Data ?? Workspace.BundledDataset;
        var table = new Table().Title("training throughput (all losses on: reconstruction, SSIM, identity, perceptual, adversarial, feature matching, mask, background)")
            .AddColumns("model", "resolution", "batch", "images/s", "s/step");
        var rows = new List<string> { "model,resolution,batch,images_per_s,seconds_per_step,threads" };
        foreach (var model in settings.Models.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            foreach (var resolution in settings.Resolutions.Split(',').Select(r => int.Parse(r, CultureInfo.InvariantCulture)))
            {
                var output = Path.Combine(Path.GetTempPath(), $"ffc-bench-train-{Environment.ProcessId}-{Guid.NewGuid():N}");
                OwnedFolder.Create(output, "benchmark train (temporary)");
                var config = new TrainConfig
                {
                    Model = model, Resolution = Math.Max(resolution, 64), Data = data, Output = output, BatchSize = settings.Batch,
                    Phases = [new TrainPhase { Resolution = resolution, Steps = settings.Steps + 2 }], AdversarialStartStep = 0,
                    CheckpointEvery = 1_000_000, SampleEvery = 1_000_000, TrainLimit = 256, EvalSplit = "train", EvalPairs = 1,
                };
                var times = new List<double>();
                var clock = Stopwatch.StartNew();
                var progress = new InlineProgress<TrainProgress>(_ => { times.Add(clock.Elapsed.TotalSeconds); });
                new SwapTrainer(config, assets, Workspace.Root).Train(false, progress, settings.Steps + 2, cancellationToken);
                OwnedFolder.Delete(output);
                double perStep = (times[^1] - times[1]) / settings.Steps;
                double ips = settings.Batch / perStep;
                table.AddRow(model, resolution.ToString(), settings.Batch.ToString(), $"{ips:0.00}", $"{perStep:0.000}");
                rows.Add(string.Create(CultureInfo.InvariantCulture, $"{model},{resolution},{settings.Batch},{ips:0.000},{perStep:0.0000},{TorchSharp.torch.get_num_threads()}"));
            }
        AnsiConsole.Write(table);
        var csv = Path.Combine(Workspace.Root, "artifacts", "bench", "train_speed.csv");
        Directory.CreateDirectory(Path.GetDirectoryName(csv)!);
        AtomicFile.WriteAllLines(csv, rows);
        AnsiConsole.MarkupLineInterpolated($"written {csv}");
        return 0;
    }
}
