using System.ComponentModel;
using System.Globalization;
using FaceFusion.Compress.Assets;
using FaceFusion.Compress.Data;
using Spectre.Console;
using Spectre.Console.Cli;
using FaceFusion.Compress.Reporting;

namespace FaceFusion.Compress.Cli.Commands;

/// <summary>Default folders of the clone.</summary>
internal static class Workspace
{
    public static string Root => AssetPaths.FindRepositoryRoot() ?? Directory.GetCurrentDirectory();
    public static string BundledDataset => Path.Combine(Root, "datasets", "bundled");
    /// <summary>A path as the library resolves config paths: absolute, or relative to the repository root.</summary>
    public static string Resolve(string path) => Path.IsPathRooted(path) ? path : Path.GetFullPath(Path.Combine(Root, path));
    public static string IdentityAliases => Path.Combine(Root, "datasets", "identity-aliases.csv");
}

internal sealed class DataPrepareCommand : Command<DataPrepareCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--input <DIR>")]
        [Description("A folder with one subfolder per identity (images and/or videos). Default: the bundled media.")]
        public string? Input { get; init; }

        [CommandOption("-o|--output <DIR>")]
        [Description("Dataset folder. Default: datasets/bundled, or datasets/<input folder name> with --input.")]
        public string? Output { get; init; }

        [CommandOption("--sizes <LIST>")]
        [Description("Crop sizes in pixels, comma separated; the first is the manifest's reference size. Default 256,128.")]
        public string Sizes { get; init; } = "256,128";

        [CommandOption("--frame-step <N>")]
        [Description("Use every N-th video frame. Default 1.")]
        public int FrameStep { get; init; } = 1;

        [CommandOption("--force")]
        [Description("Redo even when the dataset is up to date with its inputs; an existing empty folder may then be the output (a non-empty one only if ffc made it).")]
        public bool Force { get; init; }

        [CommandOption("--no-wait")]
        [Description("If another process is preparing the same output, stop (exit 1) instead of waiting for it.")]
        public bool NoWait { get; init; }

        public override ValidationResult Validate()
        {
            if (FrameStep < 1) return ValidationResult.Error("--frame-step must be at least 1");
            if (!TryParseSizes(Sizes, out _)) return ValidationResult.Error($"--sizes '{Sizes}': expected sizes like 256,128 (16–1024)");
            return ValidationResult.Success();
        }
    }

    internal static bool TryParseSizes(string text, out int[] sizes)
    {
        sizes = [];
        var parts = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var list = new List<int>();
        foreach (var p in parts)
        {
            if (!int.TryParse(p, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) || v < 16 || v > 1024) return false;
            list.Add(v);
        }
        sizes = list.Distinct().ToArray();
        return sizes.Length > 0;
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var assets = AssetPaths.Locate();
        TryParseSizes(settings.Sizes, out var sizes);
        var user = settings.Input is not null;
        var sources = user
            ? DatasetPreparer.FolderSources(settings.Input!)
            : DatasetPreparer.BundledSources(assets, IdentityNamer.FromFile(Workspace.IdentityAliases));
        var output = settings.Output ?? (user
            ? Path.Combine(Workspace.Root, "datasets", Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(settings.Input!))))
            : Workspace.BundledDataset);
        var options = new PrepareOptions
        {
            CropSizes = sizes, FrameStep = settings.FrameStep, Force = settings.Force, NoWait = settings.NoWait,
            // The bundled stills are the unseen identities; a user's folder holds identities out by hash instead.
            Splits = new SplitPolicy { StillTrainFraction = user ? 0.8 : 0.0 },
        };
        using var preparer = new DatasetPreparer(assets);
        PrepareResult result = null!;
        var started = DateTime.UtcNow;
        AnsiConsole.Progress().AutoRefresh(false) // rendered on the working thread: see InlineProgress
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("preparing faces", maxValue: 1);
                var progress = new InlineProgress<PrepareProgress>(p =>
                {
                    task.MaxValue = Math.Max(1, p.FramesTotal);
                    task.Value = Math.Min(p.FramesDone, p.FramesTotal);
                    var rate = p.FramesDone / Math.Max(1e-3, (DateTime.UtcNow - started).TotalSeconds);
                    task.Description = $"{Path.GetFileName(p.File)} ({p.SourceIndex + 1}/{p.SourceCount}) faces {p.Faces}, {rate:0.0} frames/s";
                    ctx.Refresh();
                });
                result = preparer.Prepare(sources, output, options, progress);
                task.Value = task.MaxValue;
            });
        foreach (var warning in result.Warnings) AnsiConsole.MarkupLineInterpolated($"[yellow]skipped:[/] {warning}");
        if (result.UpToDate)
            AnsiConsole.MarkupLineInterpolated($"dataset up to date: {result.Faces} faces in {result.OutputDir} (use --force to redo)");
        else
            AnsiConsole.MarkupLineInterpolated($"prepared {result.Faces} faces ({result.Rejected} frames/files without a usable face, see {DatasetPreparer.RejectsFileName}) in {result.OutputDir}");
        return 0;
    }
}

internal sealed class DataStatsCommand : Command<DataStatsCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--data <DIR>")]
        [Description("Dataset folder. Default: datasets/bundled.")]
        public string? Data { get; init; }

        [CommandOption("--sheet <FILE>")]
        [Description("Contact sheet PNG. Default: artifacts/data/contact_sheet.png.")]
        public string? Sheet { get; init; }

        [CommandOption("--seed <N>")]
        [Description("Seed for the contact sheet's random faces. Default 0.")]
        public int Seed { get; init; }
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var dir = settings.Data ?? Workspace.BundledDataset;
        var records = FaceManifest.Read(Path.Combine(dir, FaceManifest.FileName));
        var table = new Table().Title($"faces in {dir}").AddColumns("identity", "train", "val", "test", "total");
        foreach (var (identity, train, val, test) in DatasetStats.Counts(records))
            table.AddRow(identity, train.ToString(), val.ToString(), test.ToString(), (train + val + test).ToString());
        int Count(string s) => records.Count(r => r.Split == s);
        table.AddRow("[bold]all[/]", $"[bold]{Count(Splits.Train)}[/]", $"[bold]{Count(Splits.Val)}[/]", $"[bold]{Count(Splits.Test)}[/]", $"[bold]{records.Count}[/]");
        AnsiConsole.Write(table);
        var videoFaces = records.Count(r => r.Frame >= 0);
        AnsiConsole.MarkupLineInterpolated($"{records.Select(r => r.Identity).Distinct().Count()} identities; {videoFaces} faces from video frames, {records.Count - videoFaces} from still photos; profile faces (|yaw| > 30°): {records.Count(r => Math.Abs(r.YawDegrees) > 30)}");
        var sheetPath = settings.Sheet ?? Path.Combine(Workspace.Root, "artifacts", "data", "contact_sheet.png");
        DatasetStats.ContactSheet(dir, records, seed: settings.Seed).SavePng(sheetPath);
        AnsiConsole.MarkupLineInterpolated($"contact sheet: {sheetPath} (green: the template's eye line; red: its five points)");
        return 0;
    }
}
