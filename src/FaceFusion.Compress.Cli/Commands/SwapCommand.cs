using System.ComponentModel;
using FaceFusion.Compress.Assets;
using FaceFusion.Compress.Data;
using FaceFusion.Compress.Export;
using FaceFusion.Compress.Imaging;
using FaceFusion.Compress.Judging;
using FaceFusion.Compress.Runtime;
using Spectre.Console;
using Spectre.Console.Cli;
using FaceFusion.Compress.Reporting;

namespace FaceFusion.Compress.Cli.Commands;

internal sealed class SwapCommand : Command<SwapCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--source <FACE>")]
        [Description("Image of the face to put in (its largest face is used).")]
        public string? Source { get; init; }

        [CommandOption("--target <IMAGE_OR_VIDEO>")]
        [Description("Image or video whose face(s) are replaced.")]
        public string? Target { get; init; }

        [CommandOption("--model <SWAPPER>")]
        [Description("An ONNX swapper with FaceFusion IO (target, source → output [[, mask]]) or a checkpoint folder (exported for the run). Default: " + SwapperDefaults.Folder + ", the teacher that swaps.")]
        public string? Model { get; init; }

        [CommandOption("-o|--output <FILE>")]
        [Description("Output PNG (for an image) or MP4 (for a video).")]
        public string? Output { get; init; }

        [CommandOption("--all-faces")]
        [Description("Swap every face of the target, not only the largest.")]
        public bool AllFaces { get; init; }

        [CommandOption("--face <WHICH>")]
        [Description("Which target faces: largest (default), all, or reference (those like --reference-face).")]
        public string Face { get; init; } = "largest";

        [CommandOption("--reference-face <IMAGE>")]
        [Description("With --face reference: swap the target faces whose identity cosine to this image's face is at least --reference-threshold.")]
        public string? ReferenceFace { get; init; }

        [CommandOption("--reference-threshold <COS>")]
        [Description("Identity cosine a target face needs to the reference face. Default 0.35.")]
        public double ReferenceThreshold { get; init; } = 0.35;

        [CommandOption("--blend <MODE>")]
        [Description("feather (default: alpha through the feathered mask) or poisson (seamless cloning, then the mask).")]
        public string Blend { get; init; } = "feather";

        [CommandOption("--compare <MODELS>")]
        [Description("Instead of --model: two or more comma-separated ONNX swappers; writes target | source | copy-target | A | B side by side with each one's latency, identity cosine and the identity judge's distances to source and target (same below 0.6) and verdict.")]
        public string? Compare { get; init; }

        [CommandOption("--embedder <ONNX>")]
        [Description("Identity embedder for the source face: the recogniser the swapper was trained with (default: the bundled fr_feature.onnx).")]
        public string? Embedder { get; init; }

        [CommandOption("--embedder-normalization <N>")]
        [Description("ffc ((x − 127)/128, default) or insightface ((x − 127.5)/127.5, as FaceFusion feeds ArcFace).")]
        public string EmbedderNormalization { get; init; } = "ffc";

        [CommandOption("--no-color")]
        [Description("Skip the L*a*b* colour correction of the swapped crop.")]
        public bool NoColor { get; init; }

        [CommandOption("--mask-blur <F>")]
        [Description("Feather of the box mask as a fraction of the crop. Default 0.15.")]
        public double MaskBlur { get; init; } = 0.15;

        [CommandOption("--mask-padding <F>")]
        [Description("Inset of the box mask as a fraction of the crop. Default 0.02.")]
        public double MaskPadding { get; init; } = 0.02;

        [CommandOption("--threads <N>")]
        [Description("ONNX Runtime intra-op threads. Default: all cores.")]
        public int Threads { get; init; }

        [CommandOption("--no-judge")]
        [Description("Skip the independent judge's verdict on the output (whose face it shows).")]
        public bool NoJudge { get; init; }

        [CommandOption("--judge-frames <N>")]
        [Description("For a video: how many frames, spread over it, the judge looks at. Default 32.")]
        public int JudgeFrames { get; init; } = 32;

        public override ValidationResult Validate() =>
            Source is null || Target is null || (Model is not null && Compare is not null) || Output is null
                ? ValidationResult.Error("--source, --target and -o|--output are required, and at most one of --model or --compare")
            : JudgeFrames < 1 ? ValidationResult.Error($"--judge-frames {JudgeFrames}: at least 1")
            : Compare is not null && Compare.Split(',', StringSplitOptions.RemoveEmptyEntries).Length < 2 ? ValidationResult.Error("--compare needs two or more models, comma separated")
            : Face is not ("largest" or "all" or "reference") ? ValidationResult.Error($"--face '{Face}': use largest, all or reference")
            : Face == "reference" && ReferenceFace is null ? ValidationResult.Error("--face reference needs --reference-face IMAGE")
            : Blend is not ("feather" or "poisson") ? ValidationResult.Error($"--blend '{Blend}': use feather or poisson")
            : EmbedderNormalization is not ("ffc" or "insightface") ? ValidationResult.Error($"--embedder-normalization '{EmbedderNormalization}': use ffc or insightface")
            // NaN passes every comparison: a NaN blur once painted a black box over the face.
            : !double.IsFinite(MaskBlur) || MaskBlur < 0 || MaskBlur > 1 ? ValidationResult.Error($"--mask-blur {MaskBlur}: a fraction of the crop in [0, 1]")
            : !double.IsFinite(MaskPadding) || MaskPadding < 0 || MaskPadding >= 0.5 ? ValidationResult.Error($"--mask-padding {MaskPadding}: a fraction of the crop in [0, 0.5)")
            : !double.IsFinite(ReferenceThreshold) ? ValidationResult.Error($"--reference-threshold {ReferenceThreshold}: a finite number")
            : ValidationResult.Success();
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        RequireSafeOutput(settings);
        var options = new SwapOptions
        {
            AllFaces = settings.AllFaces, ColorCorrection = !settings.NoColor, MaskBlur = settings.MaskBlur, MaskPadding = settings.MaskPadding,
            Ort = new OrtSettings { IntraOpThreads = settings.Threads },
            Selection = settings.Face switch { "all" => FaceSelection.All, "reference" => FaceSelection.Reference, _ => FaceSelection.Largest },
            ReferenceThreshold = settings.ReferenceThreshold,
            Blend = settings.Blend == "poisson" ? BlendMode.Poisson : BlendMode.Feather,
            EmbedderPath = settings.Embedder, EmbedderNormalization = settings.EmbedderNormalization,
        };
        var assets = AssetPaths.Locate();
        var sourceImage = RgbImage.Load(settings.Source!);
        if (settings.Compare is not null) return Compare(settings, assets, sourceImage, options);
        using var model = SwapperDefaults.Resolve(settings.Model);
        using var pipeline = new FaceSwapPipeline(assets, model.OnnxPath, options);
        if (pipeline.EmbedderMismatch is { } warning) AnsiConsole.MarkupLineInterpolated($"[yellow]warning:[/] {warning}");
        var source = pipeline.EmbedSource(sourceImage, settings.Source!);
        if (settings.ReferenceFace is not null) pipeline.SetReference(RgbImage.Load(settings.ReferenceFace), settings.ReferenceFace);
        int rc = SwapWith(pipeline, settings, model.Name, source);
        if (!settings.NoJudge) JudgeOutput(assets, settings, model.Name, sourceImage);
        return rc;
    }

    /// <summary>
    /// The independent judge's verdict on what was written: a model that returns the target is said to, plainly,
    /// instead of the output passing for a swap.
    /// </summary>
    private static void JudgeOutput(AssetPaths assets, Settings settings, string model, RgbImage sourceImage)
    {
        using var judge = new SwapVerdictJudge(assets, new OrtSettings { IntraOpThreads = settings.Threads });
        var source = judge.DescribeLargestFace(sourceImage) ?? throw new SwapInputException($"{settings.Source}: the judge's detector finds no face");
        List<SwapVerdict> verdicts;
        if (VideoReader.IsVideo(settings.Target!))
            verdicts = judge.JudgeVideo(source, settings.Target!, settings.Output!, settings.JudgeFrames);
        else
        {
            var target = judge.DescribeLargestFace(RgbImage.Load(settings.Target!)) ?? throw new SwapInputException($"{settings.Target}: the judge's detector finds no face");
            verdicts = judge.Judge(source, target, RgbImage.Load(settings.Output!)) is { } v ? [v] : [];
        }
        if (verdicts.Count == 0)
        {
            AnsiConsole.MarkupLineInterpolated($"[yellow]warning:[/] the judge finds no face in {settings.Output}");
            return;
        }
        int asSource = verdicts.Count(v => v.Person == JudgedPerson.Source), asTarget = verdicts.Count(v => v.Person == JudgedPerson.Target);
        string what = verdicts.Count == 1 ? "the output" : $"{verdicts.Count} judged frames";
        AnsiConsole.MarkupLineInterpolated($"judge (face-api recogniser, not used in training): {what}: source's person {asSource}, target's {asTarget}, neither {verdicts.Count - asSource - asTarget}; mean distance to the source {verdicts.Average(v => v.ToSource):0.000}, to the target {verdicts.Average(v => v.ToTarget):0.000} (same person below {IdentityJudge.SameThreshold})");
        if (asTarget * 2 > verdicts.Count)
            AnsiConsole.MarkupLineInterpolated($"[yellow]warning:[/] {model} did not swap: the judge still sees the target's person in {asTarget} of {verdicts.Count} {(verdicts.Count == 1 ? "output" : "frames")}");
    }

    /// <summary>Before any work: the output is a new or regular file, none of the inputs, and of the format written.</summary>
    private static void RequireSafeOutput(Settings settings)
    {
        var output = settings.Output!;
        AtomicFile.RequireRegularOrAbsent(Path.GetFullPath(output));
        foreach (var (option, input) in new[] { ("--target", settings.Target), ("--source", settings.Source), ("--reference-face", settings.ReferenceFace) })
            if (input is not null && SameFile(input, output))
                throw new SwapInputException($"{output}: -o is the {option} input; writing it would destroy the input; choose another output");
        bool video = VideoReader.IsVideo(settings.Target!) && settings.Compare is null;
        var extension = Path.GetExtension(output).ToLowerInvariant();
        if (!video && extension != ".png")
            throw new SwapInputException($"{output}: images are written as PNG; name the output .png");
        if (video && extension != ".mp4")
            throw new SwapInputException($"{output}: videos are written as H.264 MP4; name the output .mp4");
    }

    private static bool SameFile(string a, string b)
    {
        static string Real(string p)
        {
            var full = Path.GetFullPath(p);
            try { return File.ResolveLinkTarget(full, returnFinalTarget: true)?.FullName ?? full; }
            catch (IOException) { return full; }
        }
        return string.Equals(Real(a), Real(b), OperatingSystem.IsWindows() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal);
    }

    private static int Compare(Settings settings, AssetPaths assets, RgbImage sourceImage, SwapOptions options)
    {
        if (VideoReader.IsVideo(settings.Target!)) throw new SwapInputException($"{settings.Target}: --compare takes a target image, not a video");
        var models = settings.Compare!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var (sheet, compared) = SwapComparison.Compare(assets, sourceImage, settings.Source!, RgbImage.Load(settings.Target!), settings.Target!, models, options);
        var png = PngText.Add(sheet.EncodePng(), new Dictionary<string, string>
        {
            ["Software"] = "FaceFusion.Compress ffc swap --compare",
            ["Comment"] = $"generated by ffc swap --compare with models {string.Join(", ", compared.Where(m => m.Name != SwapJudging.CopyTarget).Select(m => m.Name))} beside copy-target; synthetic image",
        });
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(settings.Output!))!);
        AtomicFile.WriteAllBytes(settings.Output!, png);
        // Each output beside copy-target with the independent judge's verdict: a model that returns its target reads "target".
        foreach (var m in compared)
        {
            string judged = $"judge distance to the source {SwapComparison.Same(m.JudgeSourceDistance)}, to the target {SwapComparison.Same(m.JudgeTargetDistance)}: {m.Verdict}";
            if (m.Name == SwapJudging.CopyTarget) AnsiConsole.MarkupLineInterpolated($"{m.Name} (the target unchanged): {judged}");
            else AnsiConsole.MarkupLineInterpolated($"{m.Name}: swapper p50 {m.P50Ms:0.0} ms, identity cosine {m.IdentityCosine:0.000}, {judged}");
        }
        AnsiConsole.MarkupLineInterpolated($"wrote {settings.Output}");
        return 0;
    }

    private static void PrintTimings(SwapTimings timings)
    {
        var table = new Table().Title($"time per frame ({timings.Frames} frames, {timings.Faces} faces swapped)").AddColumns("stage", "ms/frame");
        foreach (var stage in SwapTimings.Stages) table.AddRow(stage, $"{timings.PerFrameMs(stage):0.0}");
        table.AddRow("total", $"{SwapTimings.Stages.Sum(timings.PerFrameMs):0.0}");
        AnsiConsole.Write(table);
    }

    private static int SwapWith(FaceSwapPipeline pipeline, Settings settings, string modelName, float[] source)
    {
        var provenance = new Dictionary<string, string>
        {
            ["Software"] = "FaceFusion.Compress ffc swap",
            ["Comment"] = $"generated by ffc swap with model {modelName} (architecture {pipeline.Swapper.Metadata.GetValueOrDefault("architecture_hash", "unknown")}); synthetic image",
        };
        if (VideoReader.IsVideo(settings.Target!))
        {
            int swapped = 0;
            AnsiConsole.Progress().AutoRefresh(false) // rendered on the working thread: see InlineProgress
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask("swapping frames", maxValue: 1);
                    var started = DateTime.UtcNow;
                    swapped = pipeline.SwapVideo(settings.Target!, settings.Output!, source,
                        new Dictionary<string, string> { ["comment"] = provenance["Comment"], ["encoder_tool"] = provenance["Software"] },
                        new InlineProgress<(int Frame, int Total)>(p =>
                        {
                            task.MaxValue = Math.Max(1, p.Total);
                            task.Value = Math.Min(p.Frame, task.MaxValue);
                            task.Description = $"frame {p.Frame}/{p.Total} {p.Frame / Math.Max(1e-3, (DateTime.UtcNow - started).TotalSeconds):0.0} frames/s";
                            ctx.Refresh();
                        }));
                });
            AnsiConsole.MarkupLineInterpolated($"wrote {settings.Output} ({swapped} frames with a swapped face)");
            PrintTimings(pipeline.Timings);
            return 0;
        }
        var target = RgbImage.Load(settings.Target!);
        var (image, faces) = pipeline.Swap(target, source);
        if (faces == 0) throw new SwapInputException($"{settings.Target}: no face found in the target image; nothing was written");
        var png = PngText.Add(image.EncodePng(), provenance);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(settings.Output!))!);
        AtomicFile.WriteAllBytes(settings.Output!, png);
        AnsiConsole.MarkupLineInterpolated($"wrote {settings.Output} ({faces} face(s) swapped)");
        PrintTimings(pipeline.Timings);
        return 0;
    }
}
