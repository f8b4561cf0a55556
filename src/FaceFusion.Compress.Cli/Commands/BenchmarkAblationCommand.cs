using System.ComponentModel;
using System.Globalization;
using FaceFusion.Compress.Assets;
using FaceFusion.Compress.Distillation;
using FaceFusion.Compress.Training;
using Spectre.Console;
using Spectre.Console.Cli;
using FaceFusion.Compress.Reporting;

namespace FaceFusion.Compress.Cli.Commands;

internal sealed class BenchmarkAblationCommand : Command<BenchmarkAblationCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--teacher <T>")]
        [Description("Teacher: a checkpoint folder or an ONNX swapper.")]
        public string? Teacher { get; init; }

        [CommandOption("--student <S>")]
        [Description("Student: a built-in architecture (student) or a checkpoint folder. Default student.")]
        public string Student { get; init; } = "student";

        [CommandOption("-c|--config <FILE>")]
        [Description("Distillation config (YAML) shared by every run; its phases set the length. Default: built-in defaults.")]
        public string? Config { get; init; }

        [CommandOption("--steps <N>")]
        [Description("Steps per run at the config's resolution, replacing its phases. Default: the config's phases.")]
        public int? Steps { get; init; }

        [CommandOption("--terms <LIST>")]
        [Description("Terms removed one at a time: pixel, cwd, perceptual, identity, adversarial, illumination. Default all.")]
        public string Terms { get; init; } = string.Join(",", LossAblation.Terms.Keys);

        [CommandOption("--split <SPLIT>")]
        [Description("Evaluation split. Default val.")]
        public string Split { get; init; } = "val";

        [CommandOption("--seeds <N>")]
        [Description("Also train the baseline (every term) with the next N−1 seeds: their spread is the noise a term's difference must exceed. Default 1.")]
        public int Seeds { get; init; } = 1;

        [CommandOption("-o|--output <DIR>")]
        [Description("Folder for one run per term and ablation.csv. Default artifacts/ablation.")]
        public string? Output { get; init; }

        public override ValidationResult Validate() =>
            Teacher is null ? ValidationResult.Error("--teacher is required") : Steps is < 1 ? ValidationResult.Error("--steps must be at least 1")
            : Seeds < 1 ? ValidationResult.Error("--seeds must be at least 1") : ValidationResult.Success();
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var terms = settings.Terms.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
        TrainConfig Make()
        {
            var config = settings.Config is null ? new TrainConfig() : TrainConfig.Load(settings.Config);
            config.Model = Directory.Exists(settings.Student) ? Path.GetFullPath(settings.Student) : settings.Student;
            config.Teacher = Path.GetFullPath(settings.Teacher!);
            if (settings.Steps is int steps) config.Phases = [new TrainPhase { Resolution = config.Resolution, Steps = steps }];
            return config;
        }
        var output = Path.GetFullPath(settings.Output ?? Path.Combine(Workspace.Root, "artifacts", "ablation"));
        var rows = LossAblation.Run(Make, terms, output, AssetPaths.Locate(), Workspace.Root, settings.Split, new InlineProgress<string>(l => AnsiConsole.WriteLine("  " + l)), settings.Seeds);
        var csv = LossAblation.Write(output, rows);
        var baseline = rows[0];
        string D(double v, double b) => (v - b).ToString("+0.00;-0.00;0.00", CultureInfo.InvariantCulture);
        var table = new Table().Title($"distillation loss ablation ({settings.Split} split; each row removes one term)")
            .AddColumns("removed", "PSNR dB", "Δ", "SSIM", "id cos", "Δ", "PSNR vs teacher dB", "Δ");
        foreach (var r in rows)
            table.AddRow(r.Removed, $"{r.PsnrDb:0.00}", D(r.PsnrDb, baseline.PsnrDb), $"{r.Ssim:0.000}", $"{r.IdentityCosine:0.000}",
                D(r.IdentityCosine, baseline.IdentityCosine), $"{r.PsnrVsTeacherDb:0.00}", D(r.PsnrVsTeacherDb, baseline.PsnrVsTeacherDb));
        AnsiConsole.Write(table);
        var repeats = rows.Where(r => r.Removed == "none" || r.Removed.StartsWith("none-seed", StringComparison.Ordinal)).ToList();
        if (repeats.Count > 1)
        {
            string Spread(Func<AblationRow, double> f, string format) => (repeats.Max(f) - repeats.Min(f)).ToString(format, CultureInfo.InvariantCulture);
            AnsiConsole.WriteLine($"seed-to-seed spread of the baseline over {repeats.Count} seeds (max − min): PSNR {Spread(r => r.PsnrDb, "0.00")} dB, " +
                $"id cos {Spread(r => r.IdentityCosine, "0.000")}, PSNR vs teacher {Spread(r => r.PsnrVsTeacherDb, "0.00")} dB — a term's Δ within it is noise");
        }
        AnsiConsole.MarkupLineInterpolated($"wrote {csv}");
        return 0;
    }
}
